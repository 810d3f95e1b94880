package tui

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/merge"
)

// knobMethod is a throwaway technique: the form knows it only through the
// registry.
type knobMethod struct{}

func (knobMethod) Name() string { return "knob_test" }
func (knobMethod) Doc() string  { return "a test technique" }
func (knobMethod) Params() []merge.ParamSpec {
	return []merge.ParamSpec{{Name: "knob", Scope: merge.Global, Default: 0.5, Min: 0, Max: 1, Doc: "a knob", Gene: merge.GeneT}}
}
func (knobMethod) Base() merge.BaseUse                 { return merge.BaseIgnored }
func (knobMethod) Models() (min, max int)              { return 1, 0 }
func (knobMethod) Merge(*merge.Input, []float32) error { return nil }

func fieldByKey(t *testing.T, key string) formField {
	t.Helper()
	for _, f := range formFields() {
		if f.key == key {
			return f
		}
	}
	t.Fatalf("no field %s", key)
	return formField{}
}

// TestFormsFollowTheRegistry: the technique choices, the CMA-ES and
// ps_dfs choices and the gene ranges' descriptions come from the
// registered techniques.
func TestFormsFollowTheRegistry(t *testing.T) {
	remove, err := merge.Register(merge.Technique{Order: 1000, Method: knobMethod{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
	c := config.Default()
	c.Merge.Techniques = append(c.Merge.Techniques, "dare")
	d := newDraft(c, "x.toml")
	var keys []string
	for _, o := range techniqueOptions(d) {
		keys = append(keys, o.Value)
	}
	if !slices.Contains(keys, "knob_test") || !slices.Contains(keys, "sce") || slices.Contains(keys, "passthrough") ||
		keys[len(keys)-1] != "dare" || keys[0] != "linear" {
		t.Errorf("technique options %v", keys)
	}
	if f := fieldByKey(t, "evolution.cmaes_technique"); !slices.Contains(f.options, "knob_test") {
		t.Errorf("CMA-ES options %v", f.options)
	}
	if f := fieldByKey(t, "merge.ps_method"); !slices.Contains(f.options, "knob_test") || slices.Contains(f.options, "dfs") {
		t.Errorf("ps_dfs options %v", f.options)
	}
	for key, want := range map[string][]string{
		"merge.ranges.t":       {"t of slerp", "select_topk of sce", "knob of knob_test"},
		"merge.ranges.density": {"density of ties", "density of della_linear"},
		"merge.ranges.scale":   {"step scales of dfs", "step scales of ps_dfs"},
	} {
		desc := fieldByKey(t, key).desc
		for _, w := range want {
			if !strings.Contains(desc, w) {
				t.Errorf("%s: %q lacks %q", key, desc, w)
			}
		}
	}
}

// TestGenerateConfigEditsRanges: the advanced settings include the gene
// ranges, checked like every field.
func TestGenerateConfigEditsRanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ranges.toml")
	var adv strings.Builder
	for _, f := range formFields() {
		if f.group != groupAdvanced {
			continue
		}
		switch f.key {
		case "merge.ranges.weight":
			adv.WriteString("[0.2, 2, 3]\n0.2, 0.8\n") // three numbers are rejected, then corrected
		case "merge.ranges.lambda":
			adv.WriteString("0.9, 1.1\n")
		default:
			adv.WriteString("\n")
		}
	}
	input := accessibleAnswers(map[string]string{}, "y") + adv.String()
	var out bytes.Buffer
	if err := GenerateConfig(strings.NewReader(input), &out, path, true); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Merge.Ranges.Weight != [2]float64{0.2, 0.8} || c.Merge.Ranges.Lambda != [2]float64{0.9, 1.1} ||
		c.Merge.Ranges.Density != config.Default().Merge.Ranges.Density {
		t.Fatalf("ranges %+v\n%s", c.Merge.Ranges, out.String())
	}
	if !strings.Contains(out.String(), "give min, max") {
		t.Errorf("the bad range was not reported:\n%s", out.String())
	}
}
