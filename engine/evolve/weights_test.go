package evolve

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/kernels"
)

// TestAllZeroWeightGroup: a linear genome whose weight genes are all at
// (or below) the range's floor in one layer group still decodes to a
// recipe that merges; that group's layers are the uniform average of the
// sources, the other groups keep their genes' weights.
func TestAllZeroWeightGroup(t *testing.T) {
	s, paths := testSpace(t, "linear")
	op := &operators{space: s}
	gn := op.neutral("linear")
	genes := []float64{0.7, 0.2, 0.5}
	for k := range s.Groups {
		for i := range s.M() {
			if k == 0 {
				gn.Genes[s.offW()+k*s.M()+i] = -0.2 * float64(i) // clamped to 0
			} else {
				gn.Genes[s.offW()+k*s.M()+i] = genes[i]
			}
		}
	}
	r, err := s.Decode(gn)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range r.Models {
		want := merge.Gradient(append([]float64{minWeight}, repeat(genes[i], s.Groups-1)...)...)
		if got := m.Params["weight"]; got.String() != want.String() {
			t.Errorf("source %d weight %v, want %v", i, got, want)
		}
	}
	p, err := merge.NewPlan(r, merge.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out := filepath.Join(t.TempDir(), "merged.gguf")
	if _, err := p.Execute(context.Background(), out, merge.ExecOptions{}); err != nil {
		t.Fatalf("the recipe does not merge: %v", err)
	}
	// Layer 0 sits on group 0's anchor: the mean of a, b and c.
	const name = "blk.0.attn_q.weight"
	got := readF16(t, out, name)
	var srcs [][]float32
	for _, m := range []string{"a", "b", "c"} {
		srcs = append(srcs, readF16(t, paths[m], name))
	}
	for j := range got {
		want := (srcs[0][j] + srcs[1][j] + srcs[2][j]) / 3
		if math.Abs(float64(got[j]-want)) > 1e-3*(1+math.Abs(float64(want))) {
			t.Fatalf("%s[%d] = %g, the uniform average is %g", name, j, got[j], want)
		}
	}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func readF16(t *testing.T, path, name string) []float32 {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti, ok := f.Tensor(name)
	if !ok || ti.Type != gguf.TypeF16 {
		t.Fatalf("%s: no F16 tensor %s", path, name)
	}
	raw, err := f.ReadTensor(ti, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(raw)/2)
	kernels.DecodeF16(out, raw)
	return out
}

// TestTaskWeightCentre: a task-arithmetic genome at the middle of every
// range weighs each of the M task vectors 1/M (merge.ranges.task_weight
// is in units of 1/M) with λ 1, so it merges into the uniform average of
// the sources, as the linear genome in the middle does; a gene at the top
// of the range weighs 2/M.
func TestTaskWeightCentre(t *testing.T) {
	s, paths := testSpace(t, "linear", "task_arithmetic")
	op := &operators{space: s}
	const name = "blk.1.ffn_up.weight"
	var srcs [][]float32
	for _, m := range []string{"a", "b", "c"} {
		srcs = append(srcs, readF16(t, paths[m], name))
	}
	for _, tech := range []string{"linear", "task_arithmetic"} {
		gn := op.neutral(tech)
		r, err := s.Decode(gn)
		if err != nil {
			t.Fatal(err)
		}
		if tech == "task_arithmetic" {
			for i, m := range r.Models {
				if w, _ := m.Params["weight"].At(name, 1, s.Layers); math.Abs(w-round4(1.0/3)) > 1e-12 {
					t.Errorf("source %d weighs %v at the centre, want 1/3", i, w)
				}
			}
			if l, _ := r.Params["lambda"].At(name, 1, s.Layers); l != 1 {
				t.Errorf("λ %v at the centre, want 1", l)
			}
			top := gn
			top.Genes = append([]float64(nil), gn.Genes...)
			for j := range s.wSlots() {
				top.Genes[s.offW()+j*s.M()] = 1
			}
			rt, err := s.Decode(top)
			if err != nil {
				t.Fatal(err)
			}
			if w, _ := rt.Models[0].Params["weight"].At(name, 1, s.Layers); math.Abs(w-round4(2.0/3)) > 1e-12 {
				t.Errorf("a gene at the top of task_weight [0, 2] decodes to %v, want 2/3", w)
			}
		}
		out := filepath.Join(t.TempDir(), tech+".gguf")
		if _, _, err := merge.Run(context.Background(), r, out, nil, merge.ExecOptions{}); err != nil {
			t.Fatalf("%s: %v", tech, err)
		}
		got := readF16(t, out, name)
		for j := range got {
			want := (srcs[0][j] + srcs[1][j] + srcs[2][j]) / 3
			if math.Abs(float64(got[j]-want)) > 2e-3*(1+math.Abs(float64(want))) {
				t.Fatalf("%s: %s[%d] = %g, the uniform average is %g", tech, name, j, got[j], want)
			}
		}
	}
}
