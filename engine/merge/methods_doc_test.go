package merge

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/methods.md from the registry")

// methodsDoc is docs/methods.md: the registry as tables.
func methodsDoc() string {
	var b strings.Builder
	b.WriteString(`# Merge techniques

<!-- Generated from the registry in engine/merge by
     go test ./engine/merge -run TestMethodsDoc -update
     A test fails when this file differs from the registry. -->

Every technique evomerge knows is declared once, in its own file in
` + "`engine/merge`" + `, and registered by name; the configuration's validation, the
evolution's genome, the configuration forms, ` + "`evomerge-tui --help`" + ` and this
page are derived from that declaration. Techniques follow mergekit's
implemented semantics. **Space** is where a technique works: parameter space
merges every tensor from the same tensor of each model (equal shapes needed);
data flow builds a new layer structure. **Models** counts the models besides
the base. **Use**: recipes name techniques in ` + "`merge_method`" + `, configurations in
` + "`merge.techniques`" + `.

| Technique | Space | Base | Models | Use | Description |
|---|---|---|---|---|---|
`)
	ts := Techniques()
	for _, t := range ts {
		name := "`" + t.Name + "`"
		for _, a := range t.Aliases {
			name += " (alias `" + a + "`)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", name, t.Layout, baseDoc(t.Base), t.ModelCount(), useDoc(t), t.Doc)
	}
	b.WriteString(`
## How the evolution sets them

A genome holds one shared vector of genes in [0, 1] (see ` + "`engine/evolve`" + `'s
Space). A parameter declares the genes that set it and the range of
` + "`merge.ranges`" + ` they map onto; undeclared parameters keep their defaults. A
technique that takes one model besides the base merges the source chosen by
the pick gene; one that takes at most k models merges the first k sources.
Weights a technique normalises (divides by their sum) map onto
` + "`merge.ranges.weight`" + `; task-vector weights it does not normalise map onto
` + "`merge.ranges.task_weight`" + `, in units of 1/M for M merged models, so that
the middle of its default [0, 2] is the uniform average. Both read the same
genes, so a child that switches technique keeps its sources' proportions.
Layer slices (frankenmerge) read two slices' model, start and length genes;
a layer path (dfs) reads an on/off gene and a scale gene
(` + "`merge.ranges.scale`" + `) per slot, and with a sub-merge (ps_dfs) also the genes of
` + "`merge.ps_method`" + `.

## Parameters
`)
	for _, t := range ts {
		if len(t.Params) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n### %s\n\n| Parameter | Scope | Default | Range | Evolved | Description |\n|---|---|---|---|---|---|\n", t.Name)
		for _, p := range t.Params {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", p.Name, scopeName(p.Scope), defaultDoc(p), rangeDoc(p), p.Gene, p.Doc)
		}
	}
	return b.String()
}

func baseDoc(u BaseUse) string {
	switch u {
	case BaseRequired:
		return "required"
	case BaseOptional:
		return "optional"
	}
	return "ignored"
}

func useDoc(t Technique) string {
	switch {
	case t.RecipeOnly:
		return "recipes"
	case !t.InRecipes():
		return "evolution (written as `" + t.Writes + "`)"
	}
	return "recipes, evolution"
}

func num(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return "∞"
	case math.IsInf(x, -1):
		return "−∞"
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

func defaultDoc(p ParamSpec) string {
	switch {
	case p.Required:
		return "required"
	case p.Bool:
		return strconv.FormatBool(p.Default != 0)
	}
	return num(p.Default)
}

func rangeDoc(p ParamSpec) string {
	switch {
	case p.Bool:
		return "true, false"
	case math.IsInf(p.Min, -1) && math.IsInf(p.Max, 1):
		return "any"
	}
	return "[" + num(p.Min) + ", " + num(p.Max) + "]"
}

// TestMethodsDoc: docs/methods.md is the registry's current table.
func TestMethodsDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "methods.md")
	want := methodsDoc()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is stale: run go test ./engine/merge -run TestMethodsDoc -update", path)
	}
}

// TestReadmeNamesEveryTechnique: the README's merging section names every
// registered technique.
func TestReadmeNamesEveryTechnique(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, tq := range Techniques() {
		if !strings.Contains(text, "**"+tq.Name+"**") {
			t.Errorf("README.md does not name **%s**", tq.Name)
		}
	}
}
