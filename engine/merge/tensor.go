package merge

import (
	"context"
	"fmt"

	"github.com/evomerge/evomerge/kernels"
)

// Per-tensor access for callers that place merged tensors somewhere other
// than a GGUF file: an evaluation worker writes them straight into a
// loaded model's weights.

// ComputeTensor computes output tensor i and encodes it as its Out.Type
// into dst (len(dst) = Out.Bytes()): the bytes Execute writes for it.
// It may run concurrently for different tensors of one plan. opt.Cache is
// consulted and filled as in Execute; Workers and Progress are unused.
func (p *Plan) ComputeTensor(ctx context.Context, i int, dst []byte, opt ExecOptions) error {
	if i < 0 || i >= len(p.Tensors) {
		return fmt.Errorf("tensor index %d outside the plan's %d tensors", i, len(p.Tensors))
	}
	tp := &p.Tensors[i]
	if uint64(len(dst)) != tp.Out.Bytes() {
		return fmt.Errorf("tensor %s: %d bytes needed, buffer has %d", tp.Out.Name, tp.Out.Bytes(), len(dst))
	}
	if opt.Codec == nil {
		opt.Codec = kernels.Native{}
	}
	r := p.produce(ctx, i, opt)
	if r.err != nil {
		return r.err
	}
	copy(dst, r.data)
	if r.recycle {
		p.raw.put(r.data)
	}
	return nil
}

// TensorKey identifies the bytes of output tensor i by everything that
// determines them (input files and tensors, method, resolved parameters,
// scale, seed, output type): tensors of any two plans with equal keys
// hold equal bytes. It is the key ExecOptions.Cache is used with.
// Sub-recipe operands are keyed by their name only.
func (p *Plan) TensorKey(i int) [32]byte { return p.tensorKey(&p.Tensors[i]) }
