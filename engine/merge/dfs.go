package merge

import (
	"fmt"
	"strings"

	"github.com/evomerge/evomerge/engine/gguf"
)

// Data-flow-space merging (Sakana AI's evolutionary model merge): the
// output is a path through the sources' layers — any layer of any source,
// in any order, repeats allowed — each step with a scale. Materialised as
// a stacked model: step k becomes block k, a copy of the chosen layer.
//
// Sakana's scale multiplies the hidden state passed between layers. In a
// pre-norm transformer a layer's input goes through RMSNorm, which undoes
// such a scale, so what a scale can change is how much the layer adds to
// the residual stream; evomerge therefore applies a step's scale to the
// layer's output projections (attn_output, ffn_down), the same device
// frankenmerges use to damp repeated layers. Scale 1 copies the layer as is.
//
// ps_dfs is dfs whose path may use a parameter-space merge as a source:
// declare it as a named sub-recipe ([sources.ps]) and name it in the path.

// isResidualOutput reports whether a block tensor (suffix after "blk.N.")
// writes into the residual stream.
func isResidualOutput(suffix string) bool {
	return strings.HasPrefix(suffix, "attn_output") || strings.HasPrefix(suffix, "ffn_down")
}

func init() {
	mustRegister(Technique{Name: "dfs", Order: 220, Layout: LayerPath, Base: BaseOptional, MinModels: 1,
		Doc: "a path through the models' layers ([[layers]]: model, layer, scale), repeats allowed; the scale damps the layer's residual outputs"})
	mustRegister(Technique{Name: "ps_dfs", Order: 230, Layout: LayerPath, SubMerge: true, Base: BaseRequired, MinModels: 1,
		Doc: "dfs whose path may also use a parameter-space merge of the sources, declared as a sub-recipe ([sources.NAME])"})
}

func (p *Plan) planDFS(t Technique, ref *gguf.File, errs *problems) {
	out := p.planLayerPath(t, errs)
	if len(*errs) > 0 {
		return
	}
	p.planStructural(ref, out, nil, errs)
}

func (p *Plan) planLayerPath(t Technique, errs *problems) []outLayer {
	r := p.Recipe
	if len(r.Layers) == 0 {
		errs.add("layers", "%s needs a layer path ([[layers]] with model, layer, scale)", r.Method)
		return nil
	}
	if t.SubMerge && len(r.Sources) == 0 {
		errs.add("sources", "%s needs a parameter-space sub-recipe ([sources.NAME]) used in the layer path", r.Method)
	}
	out := make([]outLayer, 0, len(r.Layers))
	for i, step := range r.Layers {
		at := fmt.Sprintf("layers[%d]", i)
		src, ok := p.sources[step.Model]
		if !ok {
			errs.add(at+".model", "unknown model %q", step.Model)
			continue
		}
		if n := blockCount(src.file()); step.Layer >= n {
			errs.add(at+".layer", "layer %d does not exist: %s has %d layers", step.Layer, step.Model, n)
			continue
		}
		out = append(out, outLayer{
			sources: []Operand{{Source: step.Model, Tensor: fmt.Sprintf("blk.%d.", step.Layer)}},
			params:  []Params{nil}, base: -1, index: i, count: len(r.Layers),
			scale: 1, residualScale: step.Scale,
		})
	}
	return out
}
