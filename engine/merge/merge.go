package merge

import (
	"context"

	"github.com/evomerge/evomerge/kernels"
)

// Run plans and executes a recipe, writing the merged model to out.
func Run(ctx context.Context, r *Recipe, out string, codec kernels.Codec, opt ExecOptions) (*Plan, Stats, error) {
	p, err := NewPlan(r, PlanOptions{Codec: codec})
	if err != nil {
		return nil, Stats{}, err
	}
	defer p.Close()
	if opt.Codec == nil {
		opt.Codec = codec
	}
	st, err := p.Execute(ctx, out, opt)
	return p, st, err
}
