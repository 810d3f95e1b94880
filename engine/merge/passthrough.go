package merge

import (
	"math"

	"github.com/evomerge/evomerge/engine/gguf"
)

// passthrough (mergekit's name) copies one model, or with slices stacks
// layer ranges of the models into a new layer structure: a frankenmerge.
// A slice with several sources merges them with a Tensorwise method
// instead (planSlices in plan.go). The output's blocks are renumbered and
// its block count and per-layer metadata follow the new structure.
//
// frankenmerge is the evolution's spelling: two stacked slices, each a
// model (a source or the base), a start layer and a length chosen by the
// genes, written as a passthrough recipe. A recipe cannot name it.
func init() {
	mustRegister(Technique{Name: "passthrough", Order: 200, Layout: Slices, Base: BaseOptional, MinModels: 1,
		RecipeOnly: true,
		Doc:        "copies one model, or stacks layer slices of the models (a frankenmerge), renumbering the blocks",
		Params: []ParamSpec{{Name: "scale", Scope: Global, Default: 1, Min: math.Inf(-1), Max: math.Inf(1),
			Doc: "multiplies the copied tensors (a gradient or filter may single some out)"}}})
	mustRegister(Technique{Name: "frankenmerge", Order: 210, Layout: Slices, Base: BaseOptional, MinModels: 1,
		Writes: "passthrough",
		Doc:    "two stacked layer slices (model, start, length) chosen by the genes"})
}

// planPassthrough copies the single model, applying the `scale` parameter.
func (p *Plan) planPassthrough(t Technique, ref *gguf.File, errs *problems) {
	r := p.Recipe
	if len(r.Models) != 1 {
		errs.add("models", "%s without slices copies exactly one model, got %d (use slices to stack layers)", t.Name, len(r.Models))
		return
	}
	src := r.Models[0]
	for k := range mergedParams(r.Params, src.Params) {
		if k != "scale" {
			errs.add("parameters."+k, "%s takes only scale", t.Name)
		}
	}
	layers := blockCount(ref)
	for _, ti := range p.sources[src.Model].tensors() {
		scale := paramOr("scale", ti.Name, LayerOf(ti.Name), layers, 1, src.Params, r.Params)
		p.Tensors = append(p.Tensors, TensorPlan{Out: outInfo(ti), Models: []Operand{{src.Model, ti.Name}}, Scale: scale})
	}
}

// slicesMethods are the methods slices can name: the Slices techniques
// (one source per slice) and the Tensorwise ones (merging the sources).
func slicesMethods() []string {
	var out []string
	for _, t := range Techniques() {
		if t.InRecipes() && t.Layout != LayerPath {
			out = append(out, t.Name)
		}
	}
	return out
}
