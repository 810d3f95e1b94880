package llama2c

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// value is the synthetic content of element e of array number a, so every
// tensor's placement can be checked independently of the layout code.
func value(a, e int) float32 { return float32(a*1000) + float32(e%997)/1024 }

// writeCheckpoint writes a tiny checkpoint: arrays in llama2.c order, each
// filled with value(arrayIndex, element).
func writeCheckpoint(t *testing.T, dir string, c Config, truncate int) string {
	t.Helper()
	var b bytes.Buffer
	vocab := int32(c.Vocab)
	if !c.SharedClassifier {
		vocab = -vocab
	}
	binary.Write(&b, binary.LittleEndian, []int32{int32(c.Dim), int32(c.Hidden), int32(c.Layers), int32(c.Heads), int32(c.KVHeads), vocab, int32(c.SeqLen)})
	kv := c.KVHeads * c.HeadDim()
	sizes := []int{c.Vocab * c.Dim, c.Layers * c.Dim, c.Layers * c.Dim * c.Dim, c.Layers * c.Dim * kv, c.Layers * c.Dim * kv,
		c.Layers * c.Dim * c.Dim, c.Layers * c.Dim, c.Layers * c.Hidden * c.Dim, c.Layers * c.Dim * c.Hidden, c.Layers * c.Hidden * c.Dim,
		c.Dim, c.SeqLen * c.HeadDim()}
	if !c.SharedClassifier {
		sizes = append(sizes, c.Vocab*c.Dim)
	}
	for a, n := range sizes {
		for e := range n {
			binary.Write(&b, binary.LittleEndian, value(a, e))
		}
	}
	p := filepath.Join(dir, "ck.bin")
	if err := os.WriteFile(p, b.Bytes()[:b.Len()-truncate], 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeTokenizer(t *testing.T, dir string, n int, extra int) string {
	t.Helper()
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, int32(8))
	for i := range n {
		text := []byte{byte('a' + i%26), ' ', byte('a' + i/26%26)}
		if i >= 3 && i < 259 {
			text = []byte{byte(i - 3)}
		}
		binary.Write(&b, binary.LittleEndian, float32(-i))
		binary.Write(&b, binary.LittleEndian, int32(len(text)))
		b.Write(text)
	}
	b.Write(make([]byte, extra))
	p := filepath.Join(dir, "tok.bin")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var tiny = Config{Dim: 64, Hidden: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, SeqLen: 16, SharedClassifier: true}

func TestConvert(t *testing.T) {
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.gguf")
			if err := Convert(writeCheckpoint(t, dir, tiny, 0), writeTokenizer(t, dir, tiny.Vocab, 0), out, Options{Name: "tiny", Type: typ}); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if n, _ := f.Metadata.ArchUint("attention.head_count_kv"); n != 2 {
				t.Errorf("head_count_kv = %d", n)
			}
			if n, _ := f.Metadata.ArchUint("rope.dimension_count"); n != 16 {
				t.Errorf("rope dims = %d", n)
			}
			toks, _ := f.Metadata.Strings("tokenizer.ggml.tokens")
			if toks[1] != "<s>" || toks[3] != "<0x00>" || toks[258] != "<0xFF>" || toks[259] != "z▁j" {
				t.Errorf("token fix-ups wrong: %q %q %q %q", toks[1], toks[3], toks[258], toks[259])
			}
			if len(f.Tensors) != 1+9*2+1 {
				t.Fatalf("%d tensors", len(f.Tensors))
			}
			if _, ok := f.Tensor("output.weight"); ok {
				t.Error("shared classifier written as output.weight")
			}
			kv := tiny.KVHeads * tiny.HeadDim()
			// tensor → (array index, element offset of its first value)
			checks := map[string][2]int{
				"token_embd.weight":        {0, 0},
				"blk.0.attn_norm.weight":   {1, 0},
				"blk.1.attn_norm.weight":   {1, tiny.Dim},
				"blk.1.attn_q.weight":      {2, tiny.Dim * tiny.Dim},
				"blk.1.attn_k.weight":      {3, tiny.Dim * kv},
				"blk.1.attn_v.weight":      {4, tiny.Dim * kv},
				"blk.0.attn_output.weight": {5, 0},
				"blk.1.ffn_norm.weight":    {6, tiny.Dim},
				"blk.1.ffn_gate.weight":    {7, tiny.Hidden * tiny.Dim},
				"blk.1.ffn_down.weight":    {8, tiny.Dim * tiny.Hidden},
				"blk.1.ffn_up.weight":      {9, tiny.Hidden * tiny.Dim},
				"output_norm.weight":       {10, 0},
			}
			for name, at := range checks {
				ti, ok := f.Tensor(name)
				if !ok {
					t.Fatalf("missing %s", name)
				}
				wantType := typ
				if len(ti.Shape) == 1 {
					wantType = gguf.TypeF32
				}
				if ti.Type != wantType {
					t.Errorf("%s is %s, want %s", name, ti.Type, wantType)
				}
				raw, _ := f.ReadTensor(ti, nil)
				got := make([]float32, ti.Elements())
				if err := (kernels.Native{}).Decode(ti.Type, got, raw); err != nil {
					t.Fatal(err)
				}
				for e, g := range got {
					want := value(at[0], at[1]+e)
					tol := 0.0
					if typ == gguf.TypeF16 {
						tol = math.Abs(float64(want)) / 1024
					} else if typ == gguf.TypeQ8_0 && len(ti.Shape) == 2 {
						tol = 2200.0 / 127 // block max ≲ 2·10^3, half a step plus scale rounding
					}
					if math.Abs(float64(g-want)) > tol {
						t.Fatalf("%s[%d] = %v, want %v", name, e, g, want)
					}
				}
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	bad := tiny
	bad.Heads = 5
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (string, string)
		want  string
	}{
		{"truncated checkpoint", func(t *testing.T, dir string) (string, string) {
			return writeCheckpoint(t, dir, tiny, 4), writeTokenizer(t, dir, tiny.Vocab, 0)
		}, "truncated or not a llama2.c checkpoint"},
		{"bad header", func(t *testing.T, dir string) (string, string) {
			return writeCheckpoint(t, dir, bad, 0), writeTokenizer(t, dir, tiny.Vocab, 0)
		}, "n_heads 5 does not divide dim 64"},
		{"short tokenizer", func(t *testing.T, dir string) (string, string) {
			return writeCheckpoint(t, dir, tiny, 0), writeTokenizer(t, dir, tiny.Vocab-1, 0)
		}, "token 299 of 300"},
		{"long tokenizer", func(t *testing.T, dir string) (string, string) {
			return writeCheckpoint(t, dir, tiny, 0), writeTokenizer(t, dir, tiny.Vocab, 5)
		}, "do not match"},
		{"missing file", func(t *testing.T, dir string) (string, string) {
			return filepath.Join(dir, "nope.bin"), writeTokenizer(t, dir, tiny.Vocab, 0)
		}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ck, tok := tt.setup(t, dir)
			out := filepath.Join(dir, "out.gguf")
			err := Convert(ck, tok, out, Options{Type: gguf.TypeF32})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Error("a failed conversion left an output file")
			}
		})
	}
}

func TestSeparateClassifier(t *testing.T) {
	c := tiny
	c.SharedClassifier = false
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	if err := Convert(writeCheckpoint(t, dir, c, 0), writeTokenizer(t, dir, c.Vocab, 0), out, Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti, ok := f.Tensor("output.weight")
	if !ok {
		t.Fatal("output.weight missing")
	}
	raw, _ := f.ReadTensor(ti, nil)
	got := make([]float32, 3)
	kernels.DecodeF32(got, raw[:12])
	if got[2] != value(12, 2) {
		t.Errorf("classifier starts with %v, want %v", got, value(12, 2))
	}
}
