package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/merge"
)

// TestTechniqueRulesFollowTheRegistry: what merge.techniques and
// merge.ps_method accept comes from the registered declarations. Whether a
// technique fits the models (a base, their number) is decided from the
// models when a run starts: package modelset's TestTechniqueRules.
func TestTechniqueRulesFollowTheRegistry(t *testing.T) {
	names := TechniqueNames()
	for _, tq := range merge.Techniques() {
		if tq.Evolvable() != slices.Contains(names, tq.Name) {
			t.Errorf("%s: evolvable %v, listed %v", tq.Name, tq.Evolvable(), slices.Contains(names, tq.Name))
		}
	}
	if !slices.Contains(names, "dare") || !slices.Contains(names, "sce") || slices.Contains(names, "passthrough") {
		t.Errorf("technique names %v", names)
	}
	if ps := PSMethods(); !slices.Contains(ps, "sce") || slices.Contains(ps, "dfs") || slices.Contains(ps, "frankenmerge") {
		t.Errorf("ps methods %v", ps)
	}
	cases := []struct {
		name   string
		change func(c *Config)
		want   string // "" = valid
	}{
		{"alias", func(c *Config) { c.Merge.Techniques = []string{"dare"} }, ""},
		{"new method", func(c *Config) { c.Merge.Techniques = []string{"sce", "multislerp", "karcher"} }, ""},
		{"recipe-only technique", func(c *Config) { c.Merge.Techniques = []string{"passthrough"} },
			`merge.techniques[0]: unknown technique "passthrough" (allowed: linear, slerp, nuslerp,`},
		{"a technique that needs a base, without one", func(c *Config) { c.Merge.Base = ""; c.Merge.Techniques = []string{"sce"} }, ""},
		{"ps_method from the registry", func(c *Config) { c.Merge.PSMethod = "sce" }, ""},
		{"ps_method must be parameter space", func(c *Config) { c.Merge.PSMethod = "dfs" },
			`merge.ps_method: "dfs" is not a parameter-space technique (linear, slerp,`},
		{"ps_method unused", func(c *Config) { c.Merge.PSMethod = "nuslerp"; c.Merge.Techniques = []string{"ties"} }, ""},
		{"cmaes technique by alias", func(c *Config) {
			c.Evolution.Optimizer, c.Merge.Techniques, c.Evolution.CMAESTechnique = "cmaes", []string{"dare"}, "dare_ties"
		}, ""},
		{"es technique not among the techniques", func(c *Config) {
			c.Evolution.Optimizer, c.Merge.Techniques, c.Evolution.CMAESTechnique = "es", []string{"linear"}, "ties"
		}, `evolution.cmaes_technique: "ties" must be one of merge.techniques (linear) or auto`},
		{"auto with neither task arithmetic nor linear", func(c *Config) {
			c.Evolution.Optimizer, c.Merge.Techniques = "es", []string{"ties", "slerp"}
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.change(&c)
			err := c.Validate().Err()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestExampleListsEveryTechnique: the example's comment on
// merge.techniques names every technique the evolution accepts.
func TestExampleListsEveryTechnique(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "evomerge.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, name := range TechniqueNames() {
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(text) {
			t.Errorf("evomerge.toml.example does not mention technique %s", name)
		}
	}
}

// TestEveryGeneHasARange: each gene kind a technique declares maps onto a
// range of merge.ranges, and Ranges.Key reaches every range.
func TestEveryGeneHasARange(t *testing.T) {
	c := Default()
	for _, tq := range merge.Techniques() {
		for _, g := range tq.Genes() {
			if !slices.Contains(RangeKeys, g.Range()) || c.Merge.Ranges.Key(g.Range()) == nil {
				t.Errorf("%s: gene %q has no merge.ranges entry", tq.Name, g.Range())
			}
		}
	}
	for _, k := range RangeKeys {
		r := c.Merge.Ranges.Key(k)
		if r == nil {
			t.Fatalf("no range %s", k)
		}
		r[1] = -1
	}
	if ps := c.Validate(); len(ps) != len(RangeKeys) {
		t.Errorf("setting every range through Key made %d problems, want %d: %v", len(ps), len(RangeKeys), ps.Err())
	}
}
