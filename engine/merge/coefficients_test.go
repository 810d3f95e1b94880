package merge

import (
	"errors"
	"math"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
)

// TestTaskVectorCoefficients: for every tensor of a plan, the coefficients
// read from the recipe alone are the ones the plan's sum form (the fused
// kernels' arithmetic) uses, with per-kind filters, layer gradients and a
// per-layer λ; one is checked against a hand computation; recipes whose
// tensors are not task-vector sums are refused with ErrNotTaskSum.
func TestTaskVectorCoefficients(t *testing.T) {
	dir := t.TempDir()
	base := writeSynth(t, dir, "base", synth.Model{Type: gguf.TypeF32, Seed: 10})
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF32, Seed: 11})
	b := writeSynth(t, dir, "b", synth.Model{Type: gguf.TypeF32, Seed: 12})
	kinds := func(attn, rest float64) Value {
		return Value{Filters: []Filtered{{Filter: "attn", Anchors: []float64{attn, attn / 2}}, {Anchors: []float64{rest}}}}
	}
	models := []ModelRef{{Model: a, Params: Params{"weight": kinds(0.6, 0.3)}}, {Model: b, Params: Params{"weight": kinds(0.2, 0.5)}}}
	for _, c := range []struct {
		name string
		r    *Recipe
	}{
		{"task_arithmetic", &Recipe{Method: "task_arithmetic", Base: base, Params: Params{"lambda": Gradient(0.8, 1.3)}, Models: models}},
		{"normalised", &Recipe{Method: "task_arithmetic", Base: base, Params: Params{"normalize": Scalar(1)}, Models: models}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := NewPlan(c.r, PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			layers := 0
			for _, tp := range p.Tensors {
				layers = max(layers, LayerOf(tp.Out.Name)+1)
			}
			checked := 0
			for i, tp := range p.Tensors {
				got, err := c.r.TaskVectorCoefficients(tp.Out.Name, layers)
				if err != nil {
					t.Fatalf("%s: %v", tp.Out.Name, err)
				}
				form, ok, err := p.SumForm(i)
				if err != nil {
					t.Fatal(err)
				}
				if !ok || form.Base == nil {
					if got != nil {
						t.Errorf("%s is copied, but has coefficients %v", tp.Out.Name, got)
					}
					continue
				}
				if len(got) != len(form.Terms) {
					t.Fatalf("%s: %d coefficients, the sum form has %d terms", tp.Out.Name, len(got), len(form.Terms))
				}
				for k, term := range form.Terms {
					if float32(got[k]) != term.Coef {
						t.Errorf("%s model %d: coefficient %v, the sum form's %v", tp.Out.Name, k, got[k], term.Coef)
					}
				}
				checked++
			}
			if checked < 10 {
				t.Fatalf("only %d tensors compared", checked)
			}
		})
	}
	// By hand: blk.0 of the first recipe has λ 0.8 and attention weights
	// 0.6 and 0.2 (the gradients' first anchors).
	r := &Recipe{Method: "task_arithmetic", Base: base, Params: Params{"lambda": Gradient(0.8, 1.3)}, Models: models}
	got, err := r.TaskVectorCoefficients("blk.0.attn_q.weight", 4)
	if err != nil || len(got) != 2 || math.Abs(got[0]-0.8*0.6) > 1e-6 || math.Abs(got[1]-0.8*0.2) > 1e-6 {
		t.Errorf("blk.0.attn_q.weight: %v, %v; want [0.48 0.16]", got, err)
	}

	for _, c := range []struct {
		name string
		r    *Recipe
	}{
		{"linear", &Recipe{Method: "linear", Models: models}},
		{"ties", &Recipe{Method: "ties", Base: base, Models: models}},
		{"dare_linear", &Recipe{Method: "dare_linear", Base: base, Models: []ModelRef{{Model: a, Params: Params{"weight": Scalar(1), "density": Scalar(1)}}}}},
		{"a sub-recipe", &Recipe{Method: "task_arithmetic", Base: base, Models: []ModelRef{{Model: "sub"}},
			Sources: map[string]*Recipe{"sub": {Method: "linear", Models: models}}}},
	} {
		if _, err := c.r.TaskVectorCoefficients("blk.0.attn_q.weight", 4); !errors.Is(err, ErrNotTaskSum) {
			t.Errorf("%s: %v, want ErrNotTaskSum", c.name, err)
		}
	}
}
