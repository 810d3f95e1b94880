// Package llama2c converts Karpathy's llama2.c checkpoints (the legacy
// "version 0" format of run.c) and their tokenizer.bin into GGUF files that
// llama.cpp loads as the llama architecture.
//
// Checkpoint layout: seven little-endian int32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means the
// classifier is stored separately instead of shared with the embedding),
// then float32 tensors: token embedding [vocab][dim], attention norms
// [L][dim], wq, wk, wv, wo, FFN norms, w1 [L][hidden][dim], w2
// [L][dim][hidden], w3, the final norm [dim], the RoPE tables (skipped) and,
// when unshared, the classifier [vocab][dim]. Tensors are PyTorch
// [out][in] row-major, which is exactly ggml's [in, out] layout, and
// llama2.c uses interleaved RoPE like llama.cpp, so no permutation is needed.
//
// tokenizer.bin: int32 max_token_length, then per token a float32 score, an
// int32 length and the bytes. llama.cpp's SentencePiece vocab needs byte
// tokens spelled "<0xNN>" (ids 3..258 hold the raw bytes 0..255), control
// tokens typed, and spaces written as "▁".
package llama2c

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// Config is a checkpoint header.
type Config struct {
	Dim, Hidden, Layers, Heads, KVHeads, Vocab, SeqLen int
	SharedClassifier                                   bool
}

const headerBytes = 7 * 4

// HeadDim is the per-head dimension.
func (c Config) HeadDim() int { return c.Dim / c.Heads }

// validate rejects headers that cannot describe a llama2.c model.
func (c Config) validate() error {
	switch {
	case c.Dim <= 0 || c.Dim > 1<<16:
		return fmt.Errorf("dim %d out of range", c.Dim)
	case c.Hidden <= 0 || c.Hidden > 1<<18:
		return fmt.Errorf("hidden_dim %d out of range", c.Hidden)
	case c.Layers <= 0 || c.Layers > 1024:
		return fmt.Errorf("n_layers %d out of range", c.Layers)
	case c.Heads <= 0 || c.Dim%c.Heads != 0:
		return fmt.Errorf("n_heads %d does not divide dim %d", c.Heads, c.Dim)
	case c.KVHeads <= 0 || c.Heads%c.KVHeads != 0:
		return fmt.Errorf("n_kv_heads %d does not divide n_heads %d", c.KVHeads, c.Heads)
	case c.Vocab <= 3+256 || c.Vocab > 1<<22:
		return fmt.Errorf("vocab_size %d out of range (byte tokens need > 259)", c.Vocab)
	case c.SeqLen <= 0 || c.SeqLen > 1<<22:
		return fmt.Errorf("seq_len %d out of range", c.SeqLen)
	}
	return nil
}

// tensor is one GGUF tensor's source: a run of float32 values in the checkpoint.
type tensor struct {
	name  string
	shape []uint64 // ggml order
	off   int64    // byte offset in the checkpoint
}

// layout lists the GGUF tensors and where each lives in the checkpoint, and
// returns the checkpoint's expected size.
func (c Config) layout() ([]tensor, int64) {
	dim, hid, L := uint64(c.Dim), uint64(c.Hidden), c.Layers
	kvDim := uint64(c.KVHeads * c.HeadDim())
	off := int64(headerBytes)
	take := func(n uint64) int64 { o := off; off += int64(n) * 4; return o }

	embd := take(uint64(c.Vocab) * dim)
	// Each per-layer array is [L][...]: layer l's slice starts at base + l*size.
	type arr struct {
		base int64
		size uint64
	}
	perLayer := func(size uint64) arr { return arr{take(uint64(L) * size), size} }
	attnNorm := perLayer(dim)
	wq := perLayer(dim * dim)
	wk := perLayer(dim * kvDim)
	wv := perLayer(dim * kvDim)
	wo := perLayer(dim * dim)
	ffnNorm := perLayer(dim)
	w1 := perLayer(hid * dim)
	w2 := perLayer(dim * hid)
	w3 := perLayer(hid * dim)
	final := take(dim)
	take(uint64(c.SeqLen) * uint64(c.HeadDim()/2) * 2) // RoPE tables, unused
	var cls int64 = -1
	if !c.SharedClassifier {
		cls = take(uint64(c.Vocab) * dim)
	}

	at := func(a arr, l int) int64 { return a.base + int64(l)*int64(a.size)*4 }
	ts := []tensor{{"token_embd.weight", []uint64{dim, uint64(c.Vocab)}, embd}}
	for l := range L {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			tensor{p + "attn_norm.weight", []uint64{dim}, at(attnNorm, l)},
			tensor{p + "attn_q.weight", []uint64{dim, dim}, at(wq, l)},
			tensor{p + "attn_k.weight", []uint64{dim, kvDim}, at(wk, l)},
			tensor{p + "attn_v.weight", []uint64{dim, kvDim}, at(wv, l)},
			tensor{p + "attn_output.weight", []uint64{dim, dim}, at(wo, l)},
			tensor{p + "ffn_norm.weight", []uint64{dim}, at(ffnNorm, l)},
			tensor{p + "ffn_gate.weight", []uint64{dim, hid}, at(w1, l)},
			tensor{p + "ffn_down.weight", []uint64{hid, dim}, at(w2, l)},
			tensor{p + "ffn_up.weight", []uint64{dim, hid}, at(w3, l)},
		)
	}
	ts = append(ts, tensor{"output_norm.weight", []uint64{dim}, final})
	if cls >= 0 {
		ts = append(ts, tensor{"output.weight", []uint64{dim, uint64(c.Vocab)}, cls})
	}
	return ts, off
}

// ReadConfig reads and validates a checkpoint header.
func ReadConfig(r io.Reader) (Config, error) {
	var h [7]int32
	if err := binary.Read(r, binary.LittleEndian, &h); err != nil {
		return Config{}, fmt.Errorf("reading the 28-byte header: %w", err)
	}
	c := Config{Dim: int(h[0]), Hidden: int(h[1]), Layers: int(h[2]), Heads: int(h[3]), KVHeads: int(h[4]),
		Vocab: int(h[5]), SeqLen: int(h[6]), SharedClassifier: h[5] > 0}
	if c.Vocab < 0 {
		c.Vocab = -c.Vocab
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("not a llama2.c checkpoint: %w", err)
	}
	return c, nil
}

// Token is one vocabulary entry after the llama.cpp fix-ups.
type Token struct {
	Text  string
	Score float32
	Type  int32 // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
}

// ReadTokenizer reads n tokens from a llama2.c tokenizer.bin and requires
// the file to end right after them.
func ReadTokenizer(r io.Reader, n int) ([]Token, error) {
	var maxLen int32
	if err := binary.Read(r, binary.LittleEndian, &maxLen); err != nil {
		return nil, fmt.Errorf("reading max_token_length: %w", err)
	}
	if maxLen <= 0 || maxLen > 1<<16 {
		return nil, fmt.Errorf("max_token_length %d out of range: not a llama2.c tokenizer", maxLen)
	}
	toks := make([]Token, n)
	buf := make([]byte, maxLen)
	for i := range toks {
		var rec struct {
			Score float32
			Len   int32
		}
		if err := binary.Read(r, binary.LittleEndian, &rec); err != nil {
			return nil, fmt.Errorf("token %d of %d: %w", i, n, err)
		}
		if rec.Len < 0 || rec.Len > maxLen {
			return nil, fmt.Errorf("token %d: length %d outside [0, %d]", i, rec.Len, maxLen)
		}
		if _, err := io.ReadFull(r, buf[:rec.Len]); err != nil {
			return nil, fmt.Errorf("token %d: %w", i, err)
		}
		toks[i] = fixToken(i, string(buf[:rec.Len]), rec.Score)
	}
	if extra, _ := io.Copy(io.Discard, r); extra != 0 {
		return nil, fmt.Errorf("%d bytes after the %d tokens the checkpoint's vocab_size announces: tokenizer and checkpoint do not match", extra, n)
	}
	return toks, nil
}

func fixToken(id int, text string, score float32) Token {
	switch {
	case id == 0:
		return Token{"<unk>", score, 2}
	case id == 1:
		return Token{"<s>", score, 3}
	case id == 2:
		return Token{"</s>", score, 3}
	case id < 3+256:
		return Token{fmt.Sprintf("<0x%02X>", id-3), score, 6}
	}
	return Token{strings.ReplaceAll(text, " ", "▁"), score, 1}
}

// fileType is llama.cpp's general.file_type for the main weight type.
func fileType(t gguf.Type) uint32 {
	switch t {
	case gguf.TypeF16:
		return 1
	case gguf.TypeQ8_0:
		return 7
	case gguf.TypeBF16:
		return 32
	}
	return 0
}

// Options control a conversion.
type Options struct {
	Name string    // general.name; defaults to the checkpoint file's base name
	Type gguf.Type // type of 2-D weights: F32 (default), F16, BF16 or Q8_0; norms stay F32
}

// Convert writes a GGUF file at out from a checkpoint and tokenizer. The
// output appears only when complete.
func Convert(checkpoint, tokenizer, out string, opt Options) error {
	switch opt.Type {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0:
	default:
		return fmt.Errorf("llama2c: output type %s not supported (use f32, f16, bf16 or q8_0)", opt.Type)
	}
	ck, err := os.Open(checkpoint)
	if err != nil {
		return fmt.Errorf("llama2c: %w", err)
	}
	defer ck.Close()
	cfg, err := ReadConfig(ck)
	if err != nil {
		return fmt.Errorf("llama2c: %s: %w", checkpoint, err)
	}
	tensors, size := cfg.layout()
	st, err := ck.Stat()
	if err != nil {
		return fmt.Errorf("llama2c: %w", err)
	}
	if st.Size() != size {
		return fmt.Errorf("llama2c: %s: %d bytes, but a checkpoint with dim=%d hidden=%d layers=%d vocab=%d seq_len=%d (classifier %s) has %d bytes: truncated or not a llama2.c checkpoint",
			checkpoint, st.Size(), cfg.Dim, cfg.Hidden, cfg.Layers, cfg.Vocab, cfg.SeqLen, map[bool]string{true: "shared", false: "separate"}[cfg.SharedClassifier], size)
	}
	tf, err := os.Open(tokenizer)
	if err != nil {
		return fmt.Errorf("llama2c: %w", err)
	}
	defer tf.Close()
	toks, err := ReadTokenizer(tf, cfg.Vocab)
	if err != nil {
		return fmt.Errorf("llama2c: %s: %w", tokenizer, err)
	}

	name := opt.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(checkpoint), ".bin")
	}
	h := gguf.Header{Metadata: metadata(cfg, toks, name, opt.Type)}
	for _, t := range tensors {
		typ := gguf.TypeF32
		if len(t.shape) == 2 {
			typ = opt.Type
		}
		h.Tensors = append(h.Tensors, gguf.TensorInfo{Name: t.name, Shape: t.shape, Type: typ})
	}

	fw, err := gguf.Create(out, h)
	if err != nil {
		return fmt.Errorf("llama2c: %w", err)
	}
	defer fw.Abort()
	var codec kernels.Native
	for i, t := range tensors {
		ti := h.Tensors[i]
		n := ti.Elements()
		raw := make([]byte, n*4)
		if _, err := ck.ReadAt(raw, t.off); err != nil {
			return fmt.Errorf("llama2c: %s: reading %s: %w", checkpoint, t.name, err)
		}
		vals := make([]float32, n)
		kernels.DecodeF32(vals, raw)
		for j, v := range vals {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("llama2c: %s: tensor %s element %d is %v", checkpoint, t.name, j, v)
			}
		}
		enc := make([]byte, ti.Bytes())
		if err := codec.Encode(ti.Type, enc, vals, int(ti.Shape[0])); err != nil {
			return fmt.Errorf("llama2c: %s: %w", t.name, err)
		}
		if err := fw.WriteTensor(ti.Name, enc); err != nil {
			return fmt.Errorf("llama2c: %w", err)
		}
	}
	if err := fw.Commit(); err != nil {
		return fmt.Errorf("llama2c: writing %s: %w", out, err)
	}
	return nil
}

func metadata(c Config, toks []Token, name string, t gguf.Type) gguf.Metadata {
	texts := make([]string, len(toks))
	scores := make([]float32, len(toks))
	types := make([]int32, len(toks))
	for i, tk := range toks {
		texts[i], scores[i], types[i] = tk.Text, tk.Score, tk.Type
	}
	return gguf.Metadata{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: name},
		{Key: "general.file_type", Value: fileType(t)},
		{Key: "general.source.format", Value: "llama2.c"},
		{Key: "llama.context_length", Value: uint32(c.SeqLen)},
		{Key: "llama.embedding_length", Value: uint32(c.Dim)},
		{Key: "llama.feed_forward_length", Value: uint32(c.Hidden)},
		{Key: "llama.block_count", Value: uint32(c.Layers)},
		{Key: "llama.attention.head_count", Value: uint32(c.Heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(c.KVHeads)},
		{Key: "llama.rope.dimension_count", Value: uint32(c.HeadDim())},
		{Key: "llama.rope.freq_base", Value: float32(10000)},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: float32(1e-5)},
		{Key: "llama.vocab_size", Value: uint32(c.Vocab)},
		{Key: "tokenizer.ggml.model", Value: "llama"},
		{Key: "tokenizer.ggml.tokens", Value: gguf.Array{Elem: gguf.ValueString, Values: texts}},
		{Key: "tokenizer.ggml.scores", Value: gguf.Array{Elem: gguf.ValueFloat32, Values: scores}},
		{Key: "tokenizer.ggml.token_type", Value: gguf.Array{Elem: gguf.ValueInt32, Values: types}},
		{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
		{Key: "tokenizer.ggml.add_bos_token", Value: true},
		{Key: "tokenizer.ggml.add_eos_token", Value: false},
	}
}
