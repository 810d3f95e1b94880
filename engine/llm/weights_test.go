package llm

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/zoo"
)

// TestWeightsMatchTheFile: the tensor map lists every tensor of the GGUF
// file once (stories15M ties nothing), with the file's name, type, shape
// and size, and reading a weight back gives the file's bytes.
func TestWeightsMatchTheFile(t *testing.T) {
	path := zoo.Model(zoo.Base)
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatalf("%v (run `make zoo`)", err)
	}
	defer f.Close()
	m, err := Load(path, ModelParams{GPULayers: 0, Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ws, err := m.Weights()
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != len(f.Tensors) {
		t.Fatalf("%d weights in the tensor map, %d tensors in the file", len(ws), len(f.Tensors))
	}
	types := map[gguf.Type]int{}
	for _, w := range ws {
		ti, ok := f.Tensor(w.Name)
		if !ok {
			t.Fatalf("weight %s is not in the file", w.Name)
		}
		types[w.Type]++
		var elems uint64 = 1
		for _, d := range w.Shape {
			elems *= d
		}
		if w.Type != ti.Type || !slices.Equal(w.Shape, ti.Shape) || uint64(w.Bytes) != ti.Bytes() ||
			int64(elems) != w.elements() || w.Buffer != "CPU" {
			t.Fatalf("weight %s: %s %v %d bytes (%d elements by ggml) in %s; file: %s %v %d bytes",
				w.Name, w.Type, w.Shape, w.Bytes, w.elements(), w.Buffer, ti.Type, ti.Shape, ti.Bytes())
		}
		want, err := f.ReadTensor(ti, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, w.Bytes)
		if err := m.GetWeight(w, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("weight %s read back differs from the file", w.Name)
		}
	}
	t.Logf("%d weights, types %v", len(ws), types)
}

// TestSetWeight overwrites a weight, reads it back and checks the model
// computes with it: zeroing the output norm makes every logit zero.
func TestSetWeight(t *testing.T) {
	path := zoo.Model(zoo.Base)
	m, err := Load(path, ModelParams{GPULayers: 0, Writable: true})
	if err != nil {
		t.Fatalf("%v (run `make zoo`)", err)
	}
	defer m.Close()
	ws, err := m.Weights()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ws, func(w Weight) bool { return w.Name == "output_norm.weight" })
	if i < 0 {
		t.Fatal("no output_norm.weight")
	}
	w := ws[i]
	orig := make([]byte, w.Bytes)
	if err := m.GetWeight(w, orig); err != nil {
		t.Fatal(err)
	}
	ctx, err := m.NewContext(ContextParams{Size: 32, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	logits := func() []float32 {
		toks, err := m.Tokenize("Once upon a time", true)
		if err != nil {
			t.Fatal(err)
		}
		ctx.Clear()
		l, err := ctx.Decode(toks, 0, len(toks)-1)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Clone(l)
	}
	before := logits()
	if err := m.SetWeight(w, make([]byte, w.Bytes)); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, w.Bytes)
	if err := m.GetWeight(w, back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, make([]byte, w.Bytes)) {
		t.Fatal("the zeroed weight does not read back as zeros")
	}
	for j, x := range logits() {
		if x != 0 {
			t.Fatalf("logit %d = %v with a zero output norm", j, x)
		}
	}
	if err := m.SetWeight(w, orig); err != nil {
		t.Fatal(err)
	}
	if after := logits(); !slices.Equal(after, before) {
		t.Fatal("restoring the weight does not restore the logits")
	}
	if err := m.SetWeight(w, orig[1:]); err == nil {
		t.Error("a short write was accepted")
	}

	mapped, err := Load(path, ModelParams{GPULayers: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer mapped.Close()
	mws, err := mapped.Weights()
	if err != nil {
		t.Fatal(err)
	}
	if err := mapped.SetWeight(mws[0], make([]byte, mws[0].Bytes)); !errors.Is(err, ErrNotWritable) {
		t.Errorf("writing a memory-mapped model: %v, want ErrNotWritable", err)
	}
}
