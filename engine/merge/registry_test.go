package merge

import (
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
)

// fixedMethod is a Tensorwise method for registry tests: it writes its
// parameter c everywhere.
type fixedMethod struct {
	name   string
	params []ParamSpec
}

func (m fixedMethod) Name() string           { return m.name }
func (m fixedMethod) Doc() string            { return "writes c" }
func (m fixedMethod) Params() []ParamSpec    { return m.params }
func (m fixedMethod) Base() BaseUse          { return BaseIgnored }
func (m fixedMethod) Models() (min, max int) { return 1, 0 }
func (m fixedMethod) Merge(in *Input, out []float32) error {
	for j := range out {
		out[j] = float32(in.Global["c"])
	}
	return nil
}

func cParam(gene Gene) ParamSpec {
	return ParamSpec{Name: "c", Scope: Global, Default: 0.5, Min: 0, Max: 1, Doc: "the value", Gene: gene}
}

func TestRegistryRejectsBadDeclarations(t *testing.T) {
	reg := NewRegistry()
	if _, err := reg.Register(Technique{Order: 1, Method: fixedMethod{name: "one", params: []ParamSpec{cParam(GeneT)}}, Aliases: []string{"uno"}}); err != nil {
		t.Fatal(err)
	}
	perModel := cParam(GeneT)
	perModel.Scope = PerModel
	required := cParam(NotEvolved)
	required.Required = true
	boolGene := boolParam("flag", false, "a flag")
	boolGene.Gene = GeneT
	for _, c := range []struct {
		name string
		t    Technique
		want string
	}{
		{"duplicate name", Technique{Method: fixedMethod{name: "one"}}, `"one" is already registered`},
		{"alias taken", Technique{Method: fixedMethod{name: "two"}, Aliases: []string{"uno"}}, `"uno" is already registered`},
		{"bad name", Technique{Method: fixedMethod{name: "Two"}}, "lower-case"},
		{"no method", Technique{Name: "three", Doc: "x", MinModels: 1}, "needs a Method"},
		{"method on a data-flow technique", Technique{Layout: LayerPath, Method: fixedMethod{name: "four"}}, "the others none"},
		{"name disagrees with the method", Technique{Name: "five", Method: fixedMethod{name: "six"}}, `its Method is named "six"`},
		{"no doc", Technique{Name: "seven", Layout: Slices, MinModels: 1}, "Doc"},
		{"model bounds", Technique{Name: "eight", Doc: "x", Layout: Slices, MinModels: 2, MaxModels: 1}, "model bounds"},
		{"gene of the wrong scope", Technique{Method: fixedMethod{name: "nine", params: []ParamSpec{perModel}}}, "the t genes set a global parameter"},
		{"evolved boolean", Technique{Method: fixedMethod{name: "ten", params: []ParamSpec{boolGene}}}, "boolean"},
		{"two parameters on one gene", Technique{Method: fixedMethod{name: "eleven", params: []ParamSpec{cParam(GeneT), {Name: "d", Min: 0, Max: 1, Doc: "d", Gene: GeneT}}}}, "both use the t genes"},
		{"required but not evolved", Technique{Method: fixedMethod{name: "twelve", params: []ParamSpec{required}}}, "cannot set it"},
		{"sub-merge without a layer path", Technique{Name: "thirteen", Doc: "x", Layout: Slices, MinModels: 1, SubMerge: true}, "SubMerge"},
		{"default out of range", Technique{Method: fixedMethod{name: "fourteen", params: []ParamSpec{{Name: "c", Default: 2, Min: 0, Max: 1, Doc: "c"}}}}, "default 2 outside"},
	} {
		_, err := reg.Register(c.t)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if got := len(reg.Techniques()); got != 1 {
		t.Errorf("%d techniques registered after the rejections, want 1", got)
	}
}

func TestRegistryOrderAliasesAndRemove(t *testing.T) {
	reg := NewRegistry()
	var removes []func()
	for _, d := range []struct {
		name  string
		order int
	}{{"b", 2}, {"c", 1}, {"a", 2}} {
		remove, err := reg.Register(Technique{Order: d.order, Method: fixedMethod{name: d.name}, Aliases: []string{d.name + "_alias"}})
		if err != nil {
			t.Fatal(err)
		}
		removes = append(removes, remove)
	}
	var names []string
	for _, tq := range reg.Techniques() {
		names = append(names, tq.Name)
	}
	if !slices.Equal(names, []string{"c", "a", "b"}) {
		t.Errorf("order %v, want c (order 1), then a and b (order 2, by name)", names)
	}
	if tq, ok := reg.Find("a_alias"); !ok || tq.Name != "a" {
		t.Errorf("alias found %q %v", tq.Name, ok)
	}
	if m, ok := reg.Lookup("b_alias"); !ok || m.Name() != "b" {
		t.Errorf("Lookup by alias: %v %v", m, ok)
	}
	// A copy handed out cannot change the registry.
	tq, _ := reg.Find("a")
	tq.Aliases[0] = "changed"
	if again, _ := reg.Find("a"); again.Aliases[0] != "a_alias" {
		t.Error("a returned technique shares its aliases with the registry")
	}
	removes[0]()
	if _, ok := reg.Find("b"); ok {
		t.Error("b still registered after remove")
	}
	if _, ok := reg.Find("b_alias"); ok {
		t.Error("b's alias still registered after remove")
	}
	if len(reg.Techniques()) != 2 {
		t.Errorf("%d techniques after one remove, want 2", len(reg.Techniques()))
	}
	// The name is free again.
	if _, err := reg.Register(Technique{Method: fixedMethod{name: "b"}}); err != nil {
		t.Errorf("re-registering a removed name: %v", err)
	}
}

// TestEveryTechniqueIsListed: the data-flow techniques are in the registry
// with the others, dare is dare_ties, and only the recipes' spellings are
// recipe methods.
func TestEveryTechniqueIsListed(t *testing.T) {
	var names []string
	for _, tq := range Techniques() {
		names = append(names, tq.Name)
	}
	for _, want := range []string{"linear", "sce", "passthrough", "frankenmerge", "dfs", "ps_dfs"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s is not in the registry (%v)", want, names)
		}
	}
	if tq, ok := Find("dare"); !ok || tq.Name != "dare_ties" {
		t.Errorf("dare is not an alias of dare_ties")
	}
	if slices.Contains(RecipeMethods(), "frankenmerge") || !slices.Contains(RecipeMethods(), "passthrough") {
		t.Errorf("recipe methods %v: frankenmerge is the evolution's, passthrough the recipes'", RecipeMethods())
	}
}

// TestRecipeCannotNameEvolutionTechnique: frankenmerge is written as
// passthrough; a recipe that names it is told so.
func TestRecipeCannotNameEvolutionTechnique(t *testing.T) {
	dir := t.TempDir()
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF32, Seed: 1})
	_, err := NewPlan(&Recipe{Method: "frankenmerge", Slices: []Slice{{Sources: []SliceSource{{Model: a, From: 0, To: 2}}}}}, PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "its recipes use passthrough") {
		t.Fatalf("err %v", err)
	}
}
