package merge

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/kernels"
)

// TestSlicesOfDifferentDepths: a stack of layers from models of different
// depths takes each block's entry of a per-layer metadata array from the
// model the block comes from (whose array has its own length).
func TestSlicesOfDifferentDepths(t *testing.T) {
	dir := t.TempDir()
	deep := writeSynth(t, dir, "deep", synth.Model{Layers: 4, Type: gguf.TypeF32, Seed: 1})
	// A two-layer model whose per-layer array differs from deep's.
	m := synth.Model{Layers: 2, Type: gguf.TypeF32, Seed: 2}
	h := m.Header("shallow")
	h.Metadata = h.Metadata.Set("llama.per_layer_test", gguf.Array{Elem: gguf.ValueUint32, Values: []uint32{200, 201}})
	shallow := filepath.Join(dir, "shallow.gguf")
	fw, err := gguf.Create(shallow, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range h.Tensors {
		buf := make([]byte, ti.Bytes())
		if err := (kernels.Native{}).Encode(ti.Type, buf, synth.Values(2, ti.Name, int(ti.Elements())), int(ti.Shape[0])); err != nil {
			t.Fatal(err)
		}
		if err := fw.WriteTensor(ti.Name, buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Commit(); err != nil {
		t.Fatal(err)
	}
	r := &Recipe{Method: "passthrough", Slices: []Slice{
		{Sources: []SliceSource{{Model: shallow, From: 0, To: 2}}},
		{Sources: []SliceSource{{Model: deep, From: 2, To: 4}}},
	}}
	out := filepath.Join(dir, "out.gguf")
	runRecipe(t, r, out)
	f, got := readAll(t, out)
	per, _ := f.Metadata.Get("llama.per_layer_test")
	if want := []uint32{200, 201, 102, 103}; !slices.Equal(per.(gguf.Array).Values.([]uint32), want) {
		t.Errorf("per-layer array %v, want %v", per, want)
	}
	if n, _ := f.Metadata.ArchUint("block_count"); n != 4 || !slices.Equal(got["blk.3.attn_q.weight"], synth.Values(1, "blk.3.attn_q.weight", len(got["blk.3.attn_q.weight"]))) {
		t.Errorf("block_count %d, or block 3 is not deep's", n)
	}
}
