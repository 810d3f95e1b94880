package merge

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
)

// TestComputeTensorMatchesExecute: every tensor ComputeTensor produces,
// computed or taken from a tensor cache, is byte for byte the tensor
// Execute writes, for a merge method, a random
// one (seeded per tensor) and a conversion to another type; keys are equal
// exactly when the tensor's recipe is.
func TestComputeTensorMatchesExecute(t *testing.T) {
	dir := t.TempDir()
	base := writeSynth(t, dir, "base", synth.Model{Type: gguf.TypeF16, Seed: 1})
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF16, Seed: 2})
	b := writeSynth(t, dir, "b", synth.Model{Type: gguf.TypeF16, Seed: 3})
	recipe := func(method, outType string, wa float64) *Recipe {
		pa, pb := Params{"weight": Scalar(wa)}, Params{"weight": Scalar(0.4)}
		if method != "task_arithmetic" {
			pa["density"], pb["density"] = Scalar(0.5), Scalar(0.5)
		}
		return &Recipe{Method: method, Base: base, OutType: outType, Seed: 7, Models: []ModelRef{{Model: a, Params: pa}, {Model: b, Params: pb}}}
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		r    *Recipe
	}{
		{"ties", recipe("ties", "", 0.6)},
		{"dare_linear", recipe("dare_linear", "", 0.6)},
		{"task_arithmetic q8_0", recipe("task_arithmetic", "q8_0", 0.6)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(tc.r, PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			out := filepath.Join(t.TempDir(), "out.gguf")
			if _, err := p.Execute(ctx, out, ExecOptions{}); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cache := NewLRU(64 << 20)
			for i, tp := range p.Tensors {
				got := make([]byte, tp.Out.Bytes())
				if err := p.ComputeTensor(ctx, i, got, ExecOptions{}); err != nil {
					t.Fatal(err)
				}
				for pass := range 2 { // the first fills the cache, the second reads it
					cached := make([]byte, tp.Out.Bytes())
					if err := p.ComputeTensor(ctx, i, cached, ExecOptions{Cache: cache}); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(cached, got) {
						t.Fatalf("%s: ComputeTensor through the cache (pass %d) differs", tp.Out.Name, pass)
					}
				}
				if cache.Hits() != i+1 {
					t.Fatalf("%s: %d cache hits after %d tensors computed twice", tp.Out.Name, cache.Hits(), i+1)
				}
				ti, _ := f.Tensor(tp.Out.Name)
				want, err := f.ReadTensor(ti, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s: ComputeTensor differs from the file Execute wrote", tp.Out.Name)
				}
			}
			if err := p.ComputeTensor(ctx, 0, make([]byte, 3), ExecOptions{}); err == nil {
				t.Error("a buffer of the wrong size was accepted")
			}
			if err := p.ComputeTensor(ctx, len(p.Tensors), nil, ExecOptions{}); err == nil {
				t.Error("an index past the plan was accepted")
			}
		})
	}

	same, err := NewPlan(recipe("ties", "", 0.6), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	again, err := NewPlan(recipe("ties", "", 0.6), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	other, err := NewPlan(recipe("ties", "", 0.7), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for i := range same.Tensors {
		if same.TensorKey(i) != again.TensorKey(i) {
			t.Fatalf("%s: equal recipes, different keys", same.Tensors[i].Out.Name)
		}
		if same.TensorKey(i) == other.TensorKey(i) {
			t.Fatalf("%s: different weights, equal keys", same.Tensors[i].Out.Name)
		}
		if i > 0 && same.TensorKey(i) == same.TensorKey(i-1) {
			t.Fatalf("%s: two tensors share a key", same.Tensors[i].Out.Name)
		}
	}
}
