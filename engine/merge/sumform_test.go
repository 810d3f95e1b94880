package merge

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/kernels"
)

// TestSumForm: linear, task arithmetic and unsparsified members of its
// family without sign election expose their tensors as weighted sums,
// with the coefficients w_i/Σw (linear) and λ·w_i (task arithmetic, whose normalize is off by default),
// whose evaluation in float32, term by term, gives ComputeTensor's bytes;
// TIES at density 1 is a consensus form with the weights as coefficients,
// evaluated by kernels.SignConsensus; sparsified and non-linear methods
// have no form.
func TestSumForm(t *testing.T) {
	dir := t.TempDir()
	base := writeSynth(t, dir, "base", synth.Model{Type: gguf.TypeF32, Seed: 10})
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF32, Seed: 11})
	b := writeSynth(t, dir, "b", synth.Model{Type: gguf.TypeF32, Seed: 12})
	w := func(v float64) Params { return Params{"weight": Scalar(v)} }
	for _, c := range []struct {
		name  string
		r     *Recipe
		sum   bool
		coefs []float32
	}{
		{"linear", &Recipe{Method: "linear", Models: []ModelRef{{Model: a, Params: w(0.6)}, {Model: b, Params: w(0.2)}}}, true, []float32{float32(0.6 / 0.8), float32(0.2 / 0.8)}},
		{"linear without normalize", &Recipe{Method: "linear", Params: Params{"normalize": Scalar(0)},
			Models: []ModelRef{{Model: a, Params: w(0.6)}, {Model: b, Params: w(-0.3)}}}, true, []float32{0.6, -0.3}},
		{"task_arithmetic", &Recipe{Method: "task_arithmetic", Base: base, Params: Params{"lambda": Scalar(0.9)},
			Models: []ModelRef{{Model: a, Params: w(0.7)}, {Model: b, Params: w(0.4)}}}, true, []float32{float32(0.9 * 0.7), float32(0.9 * 0.4)}},
		{"breadcrumbs at density 1, no outliers", &Recipe{Method: "breadcrumbs", Base: base,
			Models: []ModelRef{{Model: a, Params: Params{"weight": Scalar(0.5), "density": Scalar(1), "gamma": Scalar(0)}}}}, true, []float32{0.5}},
		{"ties", &Recipe{Method: "ties", Base: base, Models: []ModelRef{
			{Model: a, Params: Params{"weight": Scalar(0.5), "density": Scalar(1)}}, {Model: b, Params: Params{"weight": Scalar(0.5), "density": Scalar(1)}}}}, true, []float32{0.5, 0.5}},
		{"breadcrumbs at density 0.5", &Recipe{Method: "breadcrumbs", Base: base,
			Models: []ModelRef{{Model: a, Params: Params{"weight": Scalar(0.5), "density": Scalar(0.5)}}}}, false, nil},
		{"slerp", &Recipe{Method: "slerp", Base: base, Params: Params{"t": Scalar(0.3)}, Models: []ModelRef{{Model: base}, {Model: a}}}, false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := NewPlan(c.r, PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			vals := map[string][]float32{}
			for _, path := range []string{base, a, b} {
				_, m := readAll(t, path)
				for k, v := range m {
					vals[filepath.Base(path)+"/"+k] = v
				}
			}
			x := func(op Operand) []float32 { return vals[filepath.Base(op.Source)+"/"+op.Tensor] }
			for i, tp := range p.Tensors {
				f, ok, err := p.SumForm(i)
				if err != nil {
					t.Fatal(err)
				}
				if ok != c.sum {
					t.Fatalf("%s: SumForm ok = %v, want %v", tp.Out.Name, ok, c.sum)
				}
				if !ok {
					continue
				}
				if len(f.Terms) != len(c.coefs) {
					t.Fatalf("%s: %d terms, want %d", tp.Out.Name, len(f.Terms), len(c.coefs))
				}
				for k, term := range f.Terms {
					if term.Coef != c.coefs[k] {
						t.Fatalf("%s: coefficient %d is %v, want %v", tp.Out.Name, k, term.Coef, c.coefs[k])
					}
				}
				n := int(tp.Out.Elements())
				want := make([]float32, n)
				if f.Consensus {
					var deltas [][]float32
					var ws []float32
					for _, term := range f.Terms {
						d := make([]float32, n)
						for j := range d {
							d[j] = x(term.Operand)[j] - x(*f.Base)[j]
						}
						deltas, ws = append(deltas, d), append(ws, term.Coef)
					}
					kernels.SignConsensus(want, deltas, ws, f.Normalize)
					for j := range want {
						want[j] = x(*f.Base)[j] + float32(f.Lambda*want[j])
					}
				} else if f.Base != nil {
					copy(want, x(*f.Base))
				}
				for k, term := range f.Terms {
					if f.Consensus {
						break
					}
					xs := x(term.Operand)
					for j := range want {
						switch {
						case f.Base != nil:
							want[j] += float32(term.Coef * float32(xs[j]-x(*f.Base)[j]))
						case k == 0:
							want[j] = float32(term.Coef * xs[j])
						default:
							want[j] += float32(term.Coef * xs[j])
						}
					}
				}
				if f.Scale != 1 {
					for j := range want {
						want[j] = float32(float32(f.Scale) * want[j])
					}
				}
				raw := make([]byte, tp.Out.Bytes())
				if err := p.ComputeTensor(context.Background(), i, raw, ExecOptions{}); err != nil {
					t.Fatal(err)
				}
				got := make([]float32, n)
				if err := (kernels.Native{}).Decode(tp.Out.Type, got, raw); err != nil {
					t.Fatal(err)
				}
				for j := range got {
					if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
						t.Fatalf("%s[%d]: ComputeTensor %v, the sum form %v", tp.Out.Name, j, got[j], want[j])
					}
				}
			}
		})
	}
}
