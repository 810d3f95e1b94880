package llm

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ollama/ollama/ml"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
	"github.com/evomerge/evomerge/zoo"
)

func loadBase(t *testing.T) *Model {
	t.Helper()
	if err := zoo.Check(); err != nil && !strings.Contains(err.Error(), "stories15M missing") {
		// Only the base is needed here.
	}
	m, err := Load(zoo.Model(zoo.Base), ModelParams{})
	if err != nil {
		t.Fatalf("%v (run `make zoo`)", err)
	}
	t.Cleanup(m.Close)
	return m
}

// argmax returns the index of the largest value.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// TestGreedyStory checks that the converted stories15M reproduces
// llama2.c's greedy continuation of "Once upon a time".
func TestGreedyStory(t *testing.T) {
	m := loadBase(t)
	ctx, err := m.NewContext(ContextParams{Size: 64, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	toks, err := m.Tokenize("Once upon a time", true)
	if err != nil {
		t.Fatal(err)
	}
	if toks[0] != m.BOS() || m.BOS() != 1 {
		t.Fatalf("tokens %v do not start with BOS", toks)
	}
	logits, err := ctx.Decode(toks, 0, len(toks)-1)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	pos := len(toks)
	for range 12 {
		next := argmax(logits)
		if m.IsEOG(next) {
			break
		}
		out.WriteString(m.Piece(next))
		if logits, err = ctx.Decode([]int{next}, pos, 0); err != nil {
			t.Fatal(err)
		}
		pos++
	}
	const want = ", there was a little girl named Lily"
	if !strings.HasPrefix(out.String(), want) {
		t.Fatalf("greedy continuation %q, want prefix %q", out.String(), want)
	}
}

// TestLogitsRows checks that a batch's per-token logits rows equal those of
// decoding the same tokens one at a time.
func TestLogitsRows(t *testing.T) {
	m := loadBase(t)
	ctx, err := m.NewContext(ContextParams{Size: 32, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	toks, _ := m.Tokenize("The cat sat on the mat.", true)
	all, err := ctx.Decode(toks, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	batch := append([]float32(nil), all...)
	ctx.Clear()
	n := ctx.VocabSize()
	for i, tok := range toks {
		row, err := ctx.Decode([]int{tok}, i, 0)
		if err != nil {
			t.Fatal(err)
		}
		for j := range n {
			// Batched and single-token decodes take different matmul paths
			// (F16 KV cache): they agree to ~1e-2; a row mix-up differs by whole units.
			if d := math.Abs(float64(row[j] - batch[i*n+j])); d > 0.02+1e-3*math.Abs(float64(row[j])) {
				t.Fatalf("token %d logit %d: single %v vs batch %v", i, j, row[j], batch[i*n+j])
			}
		}
	}
	if _, err := ctx.Decode([]int{m.VocabSize()}, 0, 0); err == nil {
		t.Error("out-of-vocabulary token accepted")
	}
	if _, err := ctx.Decode(toks, 30, 0); err == nil {
		t.Error("decode past the context accepted")
	}
	// Asking for the last three rows returns exactly those rows.
	ctx.Clear()
	tail, err := ctx.Decode(toks, 0, len(toks)-3)
	if err != nil {
		t.Fatal(err)
	}
	if len(tail) != 3*n {
		t.Fatalf("got %d floats, want %d", len(tail), 3*n)
	}
	off := (len(toks) - 3) * n
	for j := range tail {
		if d := math.Abs(float64(tail[j] - batch[off+j])); d > 0.02+1e-3*math.Abs(float64(tail[j])) {
			t.Fatalf("partial output row value %d: %v vs %v", j, tail[j], batch[off+j])
		}
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load("/nonexistent/model.gguf", ModelParams{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/model.gguf") {
		t.Errorf("missing file: %v", err)
	}
}

// TestTraitsMatchTable checks engine/gguf's type table against ggml itself,
// and the C struct layout this package declares.
func TestTraitsMatchTable(t *testing.T) {
	for _, typ := range gguf.Types() {
		tr := Traits(typ)
		if tr.Name != strings.ToLower(typ.String()) && !strings.EqualFold(tr.Name, typ.String()) {
			t.Errorf("%s: ggml calls it %q", typ, tr.Name)
		}
		if uint64(tr.BlockSize) != typ.BlockSize() || tr.BlockBytes != typ.BlockBytes() || tr.Quantized != typ.Quantized() {
			t.Errorf("%s: ggml has block %d / %d bytes / quantized %v; table has %d / %d / %v",
				typ, tr.BlockSize, tr.BlockBytes, tr.Quantized, typ.BlockSize(), typ.BlockBytes(), typ.Quantized())
		}
	}
}

// TestCodecRoundTrip quantizes random rows to every encodable type and
// checks the error against ggml's known bounds (relative RMS error).
func TestCodecRoundTrip(t *testing.T) {
	var c Codec
	rng := rand.New(rand.NewPCG(7, 8))
	const rowLen, rows = 512, 8
	src := make([]float32, rowLen*rows)
	for i := range src {
		src[i] = float32(rng.NormFloat64())
	}
	// Upper bounds on RMS error / RMS value for Gaussian data, a little above
	// what llama.cpp's test-quantize-fns accepts.
	bounds := map[gguf.Type]float64{
		gguf.TypeF32: 0, gguf.TypeF16: 1e-3, gguf.TypeBF16: 4e-3,
		gguf.TypeQ8_0: 0.01, gguf.TypeQ5_0: 0.05, gguf.TypeQ5_1: 0.05, gguf.TypeQ4_0: 0.1, gguf.TypeQ4_1: 0.1,
		gguf.TypeQ6_K: 0.02, gguf.TypeQ5_K: 0.04, gguf.TypeQ4_K: 0.08, gguf.TypeQ3_K: 0.15, gguf.TypeQ2_K: 0.3,
		gguf.TypeIQ3_XXS: 0.25, gguf.TypeIQ3_S: 0.2,
		gguf.TypeIQ4_NL: 0.1, gguf.TypeIQ4_XS: 0.1, gguf.TypeTQ1_0: 0.9, gguf.TypeTQ2_0: 0.9, gguf.TypeMXFP4: 0.15,
	}
	var rms float64
	for _, v := range src {
		rms += float64(v) * float64(v)
	}
	rms = math.Sqrt(rms / float64(len(src)))
	for _, typ := range gguf.Types() {
		if !c.CanEncode(typ) {
			continue
		}
		bound, ok := bounds[typ]
		if !ok {
			t.Errorf("%s is encodable but has no error bound in this test", typ)
			continue
		}
		enc := make([]byte, typ.RowBytes(uint64(len(src))))
		if err := c.Encode(typ, enc, src, rowLen); err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		dec := make([]float32, len(src))
		if err := c.Decode(typ, dec, enc); err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		var se float64
		for i := range src {
			d := float64(dec[i] - src[i])
			se += d * d
		}
		rel := math.Sqrt(se/float64(len(src))) / rms
		if rel > bound {
			t.Errorf("%s: relative RMS error %.4f exceeds %.4f", typ, rel, bound)
		}
		t.Logf("%-7s relative RMS error %.5f", typ, rel)
	}
	// Q8_0 through ggml's C reference must equal the Go encoder bit for bit.
	goEnc := make([]byte, gguf.TypeQ8_0.RowBytes(uint64(len(src))))
	kernels.EncodeQ8_0(goEnc, src)
	cEnc := make([]byte, len(goEnc))
	quantizeChunkC(gguf.TypeQ8_0, cEnc, src, rowLen)
	for i := range goEnc {
		if goEnc[i] != cEnc[i] {
			t.Fatalf("Q8_0 byte %d: Go %#x, ggml %#x", i, goEnc[i], cEnc[i])
		}
	}
	for _, typ := range []gguf.Type{gguf.TypeIQ2_XXS, gguf.TypeIQ2_XS, gguf.TypeIQ2_S, gguf.TypeIQ1_S, gguf.TypeIQ1_M} {
		if c.CanEncode(typ) {
			t.Errorf("%s needs an importance matrix but is reported encodable", typ)
		}
	}
	if err := c.Encode(gguf.TypeQ4_K, make([]byte, gguf.TypeQ4_K.RowBytes(288)), make([]float32, 288), 288); err == nil {
		t.Error("Q4_K with 288-element rows accepted")
	}
}

// stories15M's 48-wide heads have no batched flash-attention kernel in
// ggml-cuda (it aborts), so flash attention must be off for it.
func TestFlashAttentionPolicy(t *testing.T) {
	m := loadBase(t)
	if m.HeadDim() != 48 {
		t.Fatalf("head dim %d, want 48", m.HeadDim())
	}
	if m.flashAttention() != ml.FlashAttentionDisabled {
		t.Error("flash attention not disabled for 48-wide heads")
	}
}

// TestDevices checks ggml's device enumeration through the cgo
// declarations: there is always the CPU, described and with host memory,
// and a model's offload count follows llama.cpp's rule — all blocks plus
// the output layer with "auto" when a GPU backend is loaded, none without.
func TestDevices(t *testing.T) {
	devs := Devices()
	var cpu *Device
	for i := range devs {
		if devs[i].Type == DeviceCPU {
			cpu = &devs[i]
		}
	}
	if cpu == nil {
		t.Fatalf("no CPU device among %+v", devs)
	}
	if cpu.Name != "CPU" || cpu.Description == "" || cpu.MemoryTotal < 1<<28 || cpu.MemoryFree > cpu.MemoryTotal {
		t.Fatalf("CPU device %+v: want name CPU, a description and plausible host memory", *cpu)
	}
	m := loadBase(t) // GPULayers 0
	if m.OffloadableLayers() != m.Layers()+1 || m.Layers() != 6 {
		t.Fatalf("stories15M: %d layers, %d offloadable; want 6 and 7", m.Layers(), m.OffloadableLayers())
	}
	if m.Offloaded() != 0 {
		t.Fatalf("GPULayers 0: %d layers offloaded", m.Offloaded())
	}
	auto, err := Load(zoo.Model(zoo.Base), ModelParams{GPULayers: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer auto.Close()
	want := 0
	if len(GPUs()) > 0 {
		want = auto.OffloadableLayers()
	}
	if auto.Offloaded() != want {
		t.Fatalf("GPULayers auto with %d GPUs: %d layers offloaded, want %d", len(GPUs()), auto.Offloaded(), want)
	}
}
