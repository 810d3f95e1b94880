package tui

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/config"
)

func TestParseAndFormatModels(t *testing.T) {
	ms, err := parseModels("zoo/build/bible.gguf\nmy=./models/x.gguf, TheBloke/Llama-2-7B-GGUF:Q8_0,\nhf:org/repo/sub/file.gguf, hf://org/n, /abs/y.GGUF, org/name@main")
	if err != nil {
		t.Fatal(err)
	}
	want := []config.Model{
		{Name: "bible", Path: "zoo/build/bible.gguf"},
		{Name: "my", Path: "./models/x.gguf"},
		{Name: "Llama-2-7B-GGUF", HF: "TheBloke/Llama-2-7B-GGUF:Q8_0"},
		{Name: "file", HF: "org/repo/sub/file.gguf"},
		{Name: "n", HF: "hf://org/n"},
		{Name: "y", Path: "/abs/y.GGUF"},
		{Name: "name", HF: "org/name@main"},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Fatalf("got  %+v\nwant %+v", ms, want)
	}
	again, err := parseModels(formatModels(ms))
	if err != nil || !reflect.DeepEqual(again, ms) {
		t.Fatalf("round trip: %+v, %v\n%s", again, err, formatModels(ms))
	}
	// A path that reads like a hub id stays a path.
	p := []config.Model{{Name: "x", Path: "models/x"}}
	if again, _ := parseModels(formatModels(p)); again[0].Path != "./models/x" {
		t.Fatalf("ambiguous path: %+v", again)
	}
	dup, _ := parseModels("a/b.gguf, c/b.gguf")
	if dup[0].Name != "b" || dup[1].Name != "b-2" {
		t.Fatalf("duplicate names: %+v", dup)
	}
	if _, err := parseModels("name="); err == nil {
		t.Fatal("empty reference accepted")
	}
}

func TestFieldValidatorsShowConfigProblems(t *testing.T) {
	d := newDraft(config.Default(), "x.toml")
	fields := formFields()
	field := func(key string) formField {
		for _, f := range fields {
			if f.key == key {
				return f
			}
		}
		t.Fatalf("no field %s", key)
		return formField{}
	}
	check := func(key, value, want string) {
		t.Helper()
		err := d.validator(fields, field(key), false)(value)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s=%q: %v", key, value, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s=%q: got %v, want %q", key, value, err, want)
		}
	}
	check("evolution.population", "12", "")
	check("evolution.population", "1", "1 is outside [2, 10000]")
	check("evolution.population", "ten", `"ten" is not a whole number`)
	check("evolution.mutation_rate", "1.5", "outside [0, 1]")
	check("evolution.seed", "-1", "not a whole number ≥ 0")
	check("merge.base", "nope", `"nope" is not one of the models`)
	check("models", "a.gguf", "at least one model besides the base")
	check("models", "a.gguf, b.gguf, stories15M=s.gguf", "")
	check("hardware.gpu_layers", "many", "use auto or a number")
	check("evaluation.objectives.perplexity", "0", "")
	// Cross-field: elitism against the population in the draft.
	d.population = "4"
	check("evolution.elitism", "4", "outside [0, 3]")
	// File references are not looked at while typing (no IO in Update)...
	check("evaluation.texts", "no/such/file.txt", "")
	check("evaluation.tasks", "no/such/tasks.jsonl", "")
	// ...but the accessible prompts accept an empty answer (the default).
	if err := d.validator(fields, field("evolution.population"), true)(""); err != nil {
		t.Fatalf("empty accessible answer: %v", err)
	}
}

func TestPureValidateDoesNotTouchFiles(t *testing.T) {
	c := config.Default()
	c.Evaluation.Texts = []string{"zoo:bible/validation", "/no/such/file"}
	c.Evaluation.Tasks = "/no/such/tasks.jsonl"
	c.Evaluation.Objectives.Tasks = 1
	if ps := pureValidate(c); len(ps) != 0 {
		t.Fatalf("pure validation found %v", ps)
	}
	if ps := c.Validate(); len(ps) < 2 {
		t.Fatalf("full validation found %v", ps)
	}
	c.Evaluation.Tasks = ""
	if ps := pureValidate(c); len(ps) != 1 || ps[0].Key != "evaluation.tasks" {
		t.Fatalf("missing tasks file: %v", ps)
	}
}

func TestConfigPageEditsAndSaves(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "evomerge.toml")
	h := newHarness(t, newFake(2, 1), 120, 40, func(o *Options) { o.ConfigPath = path })
	h.keys("2")
	if h.m.page != pageConfig || !h.m.typing() {
		t.Fatal("2 did not open the configuration")
	}
	s := h.screen()
	for _, want := range []string{"Models · page 1 of 6", "zoo:bible", "Base model", "editing " + path, "Problems"} {
		if !strings.Contains(s, want) {
			t.Errorf("config page lacks %q:\n%s", want, s)
		}
	}
	// Add a model: typing goes into the models field.
	h.typeText(", extra=models/extra.gguf")
	h.keys("ctrl+s")
	h.pump(func(m *model) bool { return !m.conf.checking }, 5*time.Second)
	if !strings.Contains(h.screen(), "saved to "+path) {
		t.Fatalf("not saved:\n%s", h.screen())
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Models) != 5 || c.Models[4] != (config.Model{Name: "extra", Path: "models/extra.gguf"}) {
		t.Fatalf("models %+v", c.Models)
	}
	if len(h.m.ctx.cfg.Models) != 5 {
		t.Fatal("the workbench's configuration was not updated")
	}
	// esc leaves the page, F2 comes back.
	h.keys("esc")
	if h.m.page != pageDashboard {
		t.Fatal("esc did not leave the configuration")
	}
}

func TestConfigPageShowsProblemsOfTheFullCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.toml")
	cfg := config.Default()
	cfg.Evaluation.Texts = []string{"/no/such/text.txt"}
	h := newHarness(t, newFake(2, 1), 120, 40, func(o *Options) { o.Config, o.ConfigPath = cfg, path })
	h.keys("f2", "ctrl+s")
	h.pump(func(m *model) bool { return !m.conf.checking }, 5*time.Second)
	s := h.screen()
	if !strings.Contains(s, "not saved: 1 problems") || !strings.Contains(s, "evaluation.texts[0]") {
		t.Fatalf("problems not shown:\n%s", s)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("an invalid configuration was written")
	}
	// At 80×24 the problems are listed above the form.
	h.send(teaWindowSize(80, 24))
	if s := h.screen(); !strings.Contains(s, "evaluation.texts[0]") {
		t.Fatalf("narrow problems:\n%s", s)
	}
}

func TestGenerateConfigAccessible(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gen.toml")
	answers := map[string]string{
		"models":                "a=zoo/build/bible.gguf, b=org/model:Q8_0, base=zoo/build/stories15M.gguf",
		"merge.base":            "base",
		techniquesKey:           "1\n3\n0", // toggle linear off, ties on... (numbers of the list), then confirm
		"evolution.population":  "1\n6",    // 1 is rejected next to the prompt, 6 accepted
		"evolution.generations": "3",
		"evolution.elitism":     "1",
		"ui.theme":              "2",
	}
	input := accessibleAnswers(answers, "n")
	var out bytes.Buffer
	if err := GenerateConfig(strings.NewReader(input), &out, path, true); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(c.Models) != 3 || c.Models[1].HF != "org/model:Q8_0" || c.Merge.Base != "base" {
		t.Fatalf("models %+v base %q", c.Models, c.Merge.Base)
	}
	if c.Evolution.Population != 6 || c.Evolution.Generations != 3 || c.Evolution.Elitism != 1 || c.UI.Theme != "light" {
		t.Fatalf("evolution %+v theme %q\n%s", c.Evolution, c.UI.Theme, out.String())
	}
	// Default techniques: linear, slerp, ties, ...; 1 toggles linear off, 3 toggles nuslerp on.
	if c.Merge.Techniques[0] == "linear" || !contains(c.Merge.Techniques, "nuslerp") {
		t.Fatalf("techniques %v", c.Merge.Techniques)
	}
	o := out.String()
	for _, want := range []string{"Population [10]", "1 is outside [2, 10000]", "Wrote " + path} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
}

func TestGenerateConfigAsksAgainForProblems(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gen.toml")
	text := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A missing file passes the field check and fails the full one; the
	// second round asks only for the texts.
	input := accessibleAnswers(map[string]string{techniquesKey: "0", "evaluation.texts": filepath.Join(dir, "missing.txt")}, "n") +
		text + "\n"
	var out bytes.Buffer
	if err := GenerateConfig(strings.NewReader(input), &out, path, true); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Evaluation.Texts) != 1 || c.Evaluation.Texts[0] != text {
		t.Fatalf("texts %v", c.Evaluation.Texts)
	}
	if !strings.Contains(out.String(), "The configuration has 1 problems:\n  evaluation.texts[0]: ") {
		t.Fatalf("output:\n%s", out.String())
	}

	// Editing an existing file: its values are the defaults, and replacing
	// it needs a yes.
	out.Reset()
	input = accessibleAnswers(map[string]string{techniquesKey: "0", "evolution.seed": "7"}, "n") + "y\n"
	if err := GenerateConfig(strings.NewReader(input), &out, path, true); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	c, _ = config.Load(path)
	if c.Evolution.Seed != 7 || c.Evaluation.Texts[0] != text || !strings.Contains(out.String(), "Editing "+path) {
		t.Fatalf("edited: seed %d texts %v\n%s", c.Evolution.Seed, c.Evaluation.Texts, out.String())
	}
}

func TestGenerateConfigEndOfInput(t *testing.T) {
	dir := t.TempDir()
	// Nothing at all: every default, which is valid.
	var out bytes.Buffer
	path := filepath.Join(dir, "a.toml")
	if err := GenerateConfig(strings.NewReader(""), &out, path, true); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	c, err := config.Load(path)
	want := config.Default()
	for i := range want.Models {
		want.Models[i].Fill = false // a written file lists its models
	}
	if err != nil || !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults not written: %v\n%+v", err, c)
	}
	// Input that ends with a problem left: nothing is written.
	path = filepath.Join(dir, "b.toml")
	input := accessibleAnswers(map[string]string{techniquesKey: "0", "evaluation.texts": "/no/such/text"}, "")
	input = strings.TrimSuffix(input, "\n")
	out.Reset()
	err = GenerateConfig(strings.NewReader(input), &out, path, true)
	if err == nil || !strings.Contains(err.Error(), "configuration not written") {
		t.Fatalf("err %v\n%s", err, out.String())
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("invalid configuration written")
	}
}

// accessibleAnswers builds the input lines for the accessible form: one
// line per prompt, in the order of formFields (the techniques right after
// the base), empty for the default; then the answer to "Edit advanced
// settings?".
func accessibleAnswers(answers map[string]string, advanced string) string {
	var b strings.Builder
	for _, f := range formFields() {
		if f.group == groupAdvanced || f.group == groupSave {
			continue
		}
		b.WriteString(answers[f.key] + "\n")
		if f.key == "merge.base" {
			a, ok := answers[techniquesKey]
			if !ok {
				a = "0"
			}
			b.WriteString(a + "\n")
		}
	}
	b.WriteString(advanced + "\n")
	return b.String()
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
