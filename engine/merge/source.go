package merge

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// source is where input tensors come from: a GGUF file, or a sub-recipe
// whose tensors are merged on demand (a ps_dfs parameter-space source).
type source interface {
	info(name string) (gguf.TensorInfo, bool)
	tensors() []gguf.TensorInfo
	// read decodes a tensor into dst (len = elements) on e's threads.
	read(ctx context.Context, e *env, name string, dst []float32) error
	// file is the GGUF file behind the source (its reference for a sub-recipe).
	file() *gguf.File
}

type fileSource struct {
	f       *gguf.File
	codec   kernels.Codec
	id      string         // modification time, part of the tensor cache key
	scratch *scratch[byte] // the plan's pool for the raw bytes read
}

func newFileSource(f *gguf.File, codec kernels.Codec, raw *scratch[byte]) *fileSource {
	s := &fileSource{f: f, codec: codec, scratch: raw}
	if st, err := os.Stat(f.Path); err == nil {
		s.id = st.ModTime().UTC().Format(time.RFC3339Nano)
	}
	return s
}

func (s *fileSource) identity() string { return s.id }

func (s *fileSource) info(name string) (gguf.TensorInfo, bool) { return s.f.Tensor(name) }
func (s *fileSource) tensors() []gguf.TensorInfo               { return s.f.Tensors }
func (s *fileSource) file() *gguf.File                         { return s.f }

func (s *fileSource) read(ctx context.Context, e *env, name string, dst []float32) error {
	ti, ok := s.f.Tensor(name)
	if !ok {
		return fmt.Errorf("%s: no tensor %q", s.f.Path, name)
	}
	raw := s.scratch.get(int(ti.Bytes()))
	defer s.scratch.put(raw)
	if err := e.cpu.do(ctx, func() error { _, err := s.f.ReadTensor(ti, raw); return err }); err != nil {
		return err
	}
	if err := decodeParallel(ctx, e.cpu, s.codec, ti.Type, dst, raw, int(ti.Shape[0])); err != nil {
		return fmt.Errorf("%s: %s: %w", s.f.Path, name, err)
	}
	return nil
}

type planSource struct {
	plan  *Plan
	index map[string]int // read-only after newPlanSource: safe for parallel reads
}

func newPlanSource(p *Plan) *planSource {
	s := &planSource{plan: p, index: make(map[string]int, len(p.Tensors))}
	for i, t := range p.Tensors {
		s.index[t.Out.Name] = i
	}
	return s
}

func (s *planSource) lookup(name string) (int, bool) {
	i, ok := s.index[name]
	return i, ok
}

func (s *planSource) info(name string) (gguf.TensorInfo, bool) {
	i, ok := s.lookup(name)
	if !ok {
		return gguf.TensorInfo{}, false
	}
	return s.plan.Tensors[i].Out, true
}

func (s *planSource) tensors() []gguf.TensorInfo {
	out := make([]gguf.TensorInfo, len(s.plan.Tensors))
	for i, t := range s.plan.Tensors {
		out[i] = t.Out
	}
	return out
}

func (s *planSource) file() *gguf.File { return s.plan.sources[s.plan.refKey].file() }

func (s *planSource) read(ctx context.Context, e *env, name string, dst []float32) error {
	i, ok := s.lookup(name)
	if !ok {
		return fmt.Errorf("sub-recipe has no tensor %q", name)
	}
	return s.plan.compute(ctx, e, &s.plan.Tensors[i], dst)
}
