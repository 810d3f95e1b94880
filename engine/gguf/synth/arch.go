package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// Arch is an architecture Spec can generate, by its GGUF name.
type Arch string

// The architectures Spec writes. Each has exactly the tensors and metadata
// keys llama.cpp's loader (llama-model.cpp, load_hparams and load_tensors)
// reads for it, so llama.cpp loads and runs the generated files.
const (
	// Llama is Llama 3 style: grouped-query attention, an untied output
	// (unless Tied), a rope_freqs tensor and a byte-level BPE vocabulary
	// with the "llama-bpe" pre-tokenizer.
	Llama Arch = "llama"
	// Qwen2 adds q/k/v biases to llama's layout; BPE vocabulary ("qwen2").
	Qwen2 Arch = "qwen2"
	// Gemma2 has post-attention and post-feed-forward norms, attention and
	// final logit soft-capping, a sliding window and a tied embedding;
	// SentencePiece vocabulary.
	Gemma2 Arch = "gemma2"
	// Gemma3 is Gemma2 plus q/k norms, without attention soft-capping.
	Gemma3 Arch = "gemma3"
	// Phi3 has a fused attn_qkv and a fused gate/up ffn_up (2×FFN rows);
	// SentencePiece vocabulary.
	Phi3 Arch = "phi3"
)

// Archs lists the architectures Spec can generate.
func Archs() []Arch { return []Arch{Llama, Qwen2, Gemma2, Gemma3, Phi3} }

// Spec describes a small model of a real architecture with deterministic
// random weights. Zero fields take small defaults (4 layers, 6 for Gemma3;
// width 64; 4 heads sharing 2 key/value heads; feed-forward 128; F32; the
// architecture's usual vocabulary).
//
// Fine-tunes of one base are Specs that differ only in Deltas (see
// FineTune): their weights are the base's plus small perturbations, as
// fine-tuned checkpoints are.
type Spec struct {
	Arch    Arch
	Layers  int
	Dim     int // embedding width (n_embd)
	Heads   int
	KVHeads int // key/value heads (grouped-query attention when < Heads)
	HeadDim int // Gemma only (attention.key_length); Dim/Heads elsewhere
	FFN     int // feed-forward width
	// Tied leaves out output.weight: llama.cpp then uses token_embd for
	// the output. Gemma models are always tied.
	Tied bool
	// Type is the type of 2-D tensors (the zero value is F32); vectors are
	// always F32.
	Type gguf.Type
	// Quant, when set, chooses each tensor's type as llama.cpp's
	// llama-quantize does for that file type ("Q4_K_M", "Q5_K_M", "Q6_K",
	// "Q8_0", "Q4_0", "IQ4_XS", "BF16", "F16", "F32"); it overrides Type.
	Quant string
	// Vocab is the tokenizer (default DefaultVocab(Arch)).
	Vocab *Vocab
	// Seed selects the base weights; Deltas perturb them (FineTune).
	Seed   uint64
	Deltas []Delta
	// BaseModels are written as general.base_model.N.* (what
	// convert_hf_to_gguf.py records for a fine-tune).
	BaseModels []BaseModel
	// Codec encodes the tensors (default kernels.Native, which writes F32,
	// F16, BF16 and Q8_0; K-quants and IQ types need engine/llm's codec).
	Codec kernels.Codec
}

// Delta is one fine-tuning perturbation: Scale times a standard normal
// draw keyed by Seed, relative to each tensor's own spread.
type Delta struct {
	Seed  uint64
	Scale float64
}

// BaseModel names the model a fine-tune was trained from.
type BaseModel struct {
	Name, Organization, RepoURL string
}

// FineTune returns a copy of s whose trainable weights are moved by a
// perturbation of relative size scale keyed by seed. Fine-tunes of one
// Spec share its base weights; rope frequencies are not trained and stay
// equal.
func (s Spec) FineTune(seed uint64, scale float64) Spec {
	s.Deltas = append(slices.Clone(s.Deltas), Delta{Seed: seed, Scale: scale})
	s.BaseModels = slices.Clone(s.BaseModels)
	return s
}

func (s Spec) withDefaults() Spec {
	if s.Arch == "" {
		s.Arch = Llama
	}
	if s.Layers == 0 {
		s.Layers = 4
		if s.Arch == Gemma3 {
			s.Layers = 6
		}
	}
	if s.Dim == 0 {
		s.Dim = 64
	}
	if s.Heads == 0 {
		s.Heads = 4
	}
	if s.KVHeads == 0 {
		s.KVHeads = min(2, s.Heads)
	}
	if s.HeadDim == 0 || !s.gemma() {
		s.HeadDim = s.Dim / s.Heads
	}
	if s.FFN == 0 {
		s.FFN = 2 * s.Dim
	}
	if s.gemma() {
		s.Tied = true
	}
	if s.Vocab == nil {
		v := DefaultVocab(s.Arch)
		s.Vocab = &v
	}
	if s.Codec == nil {
		s.Codec = kernels.Native{}
	}
	return s
}

func (s Spec) gemma() bool { return s.Arch == Gemma2 || s.Arch == Gemma3 }

func (s Spec) check() error {
	if !slices.Contains(Archs(), s.Arch) {
		return fmt.Errorf("synth: unknown architecture %q (known: %v)", s.Arch, Archs())
	}
	if s.Heads <= 0 || s.KVHeads <= 0 || s.Heads%s.KVHeads != 0 {
		return fmt.Errorf("synth: %d heads cannot share %d key/value heads", s.Heads, s.KVHeads)
	}
	if !s.gemma() && s.Dim%s.Heads != 0 {
		return fmt.Errorf("synth: width %d is not a multiple of %d heads", s.Dim, s.Heads)
	}
	if s.Arch == Gemma3 && s.Layers < 6 {
		// llama.cpp makes every sixth layer global, the others sliding-window;
		// with no global layer its KV cache allocation fails.
		return fmt.Errorf("synth: gemma3 needs at least 6 layers, got %d", s.Layers)
	}
	if s.HeadDim%2 != 0 {
		return fmt.Errorf("synth: head width %d must be even (rotary embedding)", s.HeadDim)
	}
	return s.Vocab.check()
}

// DefaultVocab is the vocabulary an architecture's models usually carry,
// scaled down: Llama 3's BPE ("llama-bpe", <|begin_of_text|> …), Qwen2's
// BPE ("qwen2", <|endoftext|>, <|im_start|>, <|im_end|>), Gemma's
// SentencePiece (<pad> <eos> <bos> <unk>, <start_of_turn> …, no space
// prefix) and Phi-3's SentencePiece (<unk> <s> </s>, then its chat
// markers), each with the matching chat template.
func DefaultVocab(a Arch) Vocab {
	switch a {
	case Qwen2:
		v := BPEVocab("qwen2", 200, "<|endoftext|>", "<|im_start|>", "<|im_end|>")
		v.PAD = v.BOS
		v.ChatTemplate = chatML
		return v
	case Gemma2, Gemma3:
		v := SPMVocab(200, "<pad>", "<eos>", "<bos>", "<unk>")
		v = v.WithAdded(TokenControl, "<start_of_turn>", "<end_of_turn>")
		v.EOS = v.ID("<end_of_turn>") // as instruction-tuned Gemma GGUFs have it
		v.AddBOS = true
		no := false
		v.AddSpacePrefix = &no
		v.ChatTemplate = gemmaTemplate
		return v
	case Phi3:
		v := SPMVocab(200, "<unk>", "<s>", "</s>")
		v = v.WithAdded(TokenControl, "<|endoftext|>", "<|assistant|>", "<|user|>", "<|end|>", "<|system|>")
		v.EOS = v.ID("<|endoftext|>")
		v.PAD = v.EOS
		v.AddBOS = true
		v.ChatTemplate = phi3Template
		return v
	default:
		v := BPEVocab("llama-bpe", 200, "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
		v.EOS = v.ID("<|end_of_text|>")
		v.AddBOS = true
		v.ChatTemplate = llama3Template
		return v
	}
}

// Chat templates in the style of each family (llama.cpp recognises them
// by their markers).
const (
	chatML         = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
	llama3Template = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
	gemmaTemplate  = "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\n' + message['content'] + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
	phi3Template   = "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

// Tensors lists the model's tensors in the order llama.cpp's converter
// writes them, with their types.
func (s Spec) Tensors() []gguf.TensorInfo {
	s = s.withDefaults()
	d, f, v := uint64(s.Dim), uint64(s.FFN), uint64(s.Vocab.Len())
	q, kv := uint64(s.Heads*s.HeadDim), uint64(s.KVHeads*s.HeadDim)
	var ts []gguf.TensorInfo
	add := func(name string, shape ...uint64) {
		ts = append(ts, gguf.TensorInfo{Name: name, Shape: shape})
	}
	add("token_embd.weight", d, v)
	if s.Arch == Llama {
		add("rope_freqs.weight", uint64(s.HeadDim/2))
	}
	for l := range s.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", d)
		switch s.Arch {
		case Phi3:
			add(p+"attn_qkv.weight", d, q+2*kv)
			add(p+"attn_output.weight", q, d)
			add(p+"ffn_norm.weight", d)
			add(p+"ffn_up.weight", d, 2*f)
			add(p+"ffn_down.weight", f, d)
			continue
		case Gemma3:
			add(p+"attn_q_norm.weight", uint64(s.HeadDim))
			add(p+"attn_k_norm.weight", uint64(s.HeadDim))
		}
		add(p+"attn_q.weight", d, q)
		add(p+"attn_k.weight", d, kv)
		add(p+"attn_v.weight", d, kv)
		if s.Arch == Qwen2 {
			add(p+"attn_q.bias", q)
			add(p+"attn_k.bias", kv)
			add(p+"attn_v.bias", kv)
		}
		add(p+"attn_output.weight", q, d)
		if s.gemma() {
			add(p+"post_attention_norm.weight", d)
		}
		add(p+"ffn_norm.weight", d)
		add(p+"ffn_gate.weight", d, f)
		add(p+"ffn_up.weight", d, f)
		add(p+"ffn_down.weight", f, d)
		if s.gemma() {
			add(p+"post_ffw_norm.weight", d)
		}
	}
	add("output_norm.weight", d)
	if !s.Tied {
		add("output.weight", d, v)
	}
	for i := range ts {
		ts[i].Type = s.tensorType(ts[i])
	}
	return ts
}

// tensorType is a tensor's storage type: F32 for vectors, else Quant's
// choice or Type; a row length the type's blocks do not divide falls back
// to Q8_0 or F16, as llama-quantize does.
func (s Spec) tensorType(ti gguf.TensorInfo) gguf.Type {
	if len(ti.Shape) < 2 {
		return gguf.TypeF32
	}
	t := s.Type
	if s.Quant != "" {
		t = quantType(s.Quant, ti.Name, s.Layers, s.Tied, s.Heads/s.KVHeads)
	}
	if ti.Shape[0]%t.BlockSize() != 0 {
		if t.Quantized() && ti.Shape[0]%32 == 0 {
			return gguf.TypeQ8_0
		}
		return gguf.TypeF16
	}
	return t
}

// Quants lists the file types Spec.Quant accepts.
func Quants() []string {
	return []string{"F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "IQ4_XS"}
}

// quantType follows llama-quantize's llama_tensor_get_type for the file
// types users download most, on dense models: the output (or the tied
// embedding) gets Q6_K, the K_M types spend Q6_K on attn_v and ffn_down
// in the first and last eighths and every third layer between, the fused
// attn_qkv gets one step more.
func quantType(quant, name string, layers int, tied bool, gqa int) gguf.Type {
	base := map[string]gguf.Type{
		"F32": gguf.TypeF32, "F16": gguf.TypeF16, "BF16": gguf.TypeBF16, "Q8_0": gguf.TypeQ8_0,
		"Q6_K": gguf.TypeQ6_K, "Q5_K_M": gguf.TypeQ5_K, "Q4_K_M": gguf.TypeQ4_K, "Q4_0": gguf.TypeQ4_0,
		"IQ4_XS": gguf.TypeIQ4_XS,
	}[strings.ToUpper(quant)]
	if !base.Quantized() {
		return base
	}
	if name == "output.weight" || (tied && name == "token_embd.weight") {
		if base == gguf.TypeQ8_0 {
			return base
		}
		return gguf.TypeQ6_K
	}
	layer := -1
	fmt.Sscanf(name, "blk.%d.", &layer)
	moreBits := layer >= 0 && (layer < layers/8 || layer >= 7*layers/8 || (layer-layers/8)%3 == 2)
	km := base == gguf.TypeQ4_K || base == gguf.TypeQ5_K
	switch {
	case strings.Contains(name, "attn_v.weight"):
		if km && moreBits {
			return gguf.TypeQ6_K
		}
		if base == gguf.TypeIQ4_XS && gqa >= 4 {
			return gguf.TypeQ5_K
		}
	case strings.Contains(name, "ffn_down"):
		if km && moreBits {
			return gguf.TypeQ6_K
		}
		if base == gguf.TypeIQ4_XS && layer < layers/8 {
			return gguf.TypeQ5_K
		}
	case strings.Contains(name, "attn_qkv.weight"):
		switch base {
		case gguf.TypeQ4_K:
			return gguf.TypeQ5_K
		case gguf.TypeQ5_K:
			return gguf.TypeQ6_K
		}
	}
	return base
}

// fileType is llama.cpp's general.file_type (enum llama_ftype) of Quant.
func fileType(quant string, t gguf.Type) uint32 {
	if quant != "" {
		return map[string]uint32{"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17,
			"Q6_K": 18, "IQ4_XS": 30, "BF16": 32}[strings.ToUpper(quant)]
	}
	return map[gguf.Type]uint32{gguf.TypeF32: 0, gguf.TypeF16: 1, gguf.TypeQ4_0: 2, gguf.TypeQ8_0: 7,
		gguf.TypeQ4_K: 15, gguf.TypeQ5_K: 17, gguf.TypeQ6_K: 18, gguf.TypeIQ4_XS: 30, gguf.TypeBF16: 32}[t]
}

// Header is the model's GGUF header: architecture metadata as
// convert_hf_to_gguf.py writes it, the vocabulary and the tensors.
func (s Spec) Header(name string) gguf.Header {
	s = s.withDefaults()
	a := string(s.Arch)
	md := gguf.Metadata{
		{Key: "general.architecture", Value: a},
		{Key: "general.type", Value: "model"},
		{Key: "general.name", Value: name},
	}
	if len(s.BaseModels) > 0 {
		md = append(md, gguf.KV{Key: "general.base_model.count", Value: uint32(len(s.BaseModels))})
		for i, b := range s.BaseModels {
			p := fmt.Sprintf("general.base_model.%d.", i)
			md = append(md, gguf.KV{Key: p + "name", Value: b.Name})
			if b.Organization != "" {
				md = append(md, gguf.KV{Key: p + "organization", Value: b.Organization})
			}
			if b.RepoURL != "" {
				md = append(md, gguf.KV{Key: p + "repo_url", Value: b.RepoURL})
			}
		}
	}
	u := func(k string, v int) { md = append(md, gguf.KV{Key: a + "." + k, Value: uint32(v)}) }
	f := func(k string, v float32) { md = append(md, gguf.KV{Key: a + "." + k, Value: v}) }
	ctx := map[Arch]int{Llama: 8192, Qwen2: 32768, Gemma2: 8192, Gemma3: 32768, Phi3: 4096}[s.Arch]
	u("context_length", ctx)
	u("embedding_length", s.Dim)
	u("block_count", s.Layers)
	u("feed_forward_length", s.FFN)
	u("attention.head_count", s.Heads)
	u("attention.head_count_kv", s.KVHeads)
	switch s.Arch {
	case Llama:
		f("rope.freq_base", 500000)
		f("attention.layer_norm_rms_epsilon", 1e-5)
		u("rope.dimension_count", s.HeadDim)
		u("vocab_size", s.Vocab.Len())
	case Qwen2:
		f("rope.freq_base", 1e6)
		f("attention.layer_norm_rms_epsilon", 1e-6)
	case Gemma2:
		u("attention.key_length", s.HeadDim)
		u("attention.value_length", s.HeadDim)
		f("attention.layer_norm_rms_epsilon", 1e-6)
		f("attn_logit_softcapping", 50)
		f("final_logit_softcapping", 30)
		u("attention.sliding_window", 32)
	case Gemma3:
		u("attention.key_length", s.HeadDim)
		u("attention.value_length", s.HeadDim)
		f("attention.layer_norm_rms_epsilon", 1e-6)
		f("rope.freq_base", 1e6)
		u("attention.sliding_window", 32)
	case Phi3:
		f("attention.layer_norm_rms_epsilon", 1e-5)
		u("rope.dimension_count", s.HeadDim)
	}
	tensors := s.Tensors()
	ft := fileType(s.Quant, s.Type)
	md = append(md, gguf.KV{Key: "general.file_type", Value: ft})
	for _, t := range tensors {
		if t.Type.Quantized() {
			md = append(md, gguf.KV{Key: "general.quantization_version", Value: uint32(2)})
			break
		}
	}
	md = append(md, s.Vocab.Metadata()...)
	return gguf.Header{Metadata: md, Tensors: tensors}
}

// Values is the float32 content of a tensor before encoding. Matrices are
// N(0, 1/rows-length) like a trained layer's initialisation, norm weights
// 1 + N(0, 0.1²), biases N(0, 0.1²), rope frequency factors 1 + |N(0, 0.5²)|.
// Each Delta adds Scale times an independent draw of the same spread
// (rope factors excepted). Streams are keyed by seed and tensor name and
// are prefix-stable: a larger vocabulary keeps the smaller one's rows.
func (s Spec) Values(ti gguf.TensorInfo) []float32 {
	s = s.withDefaults()
	n := int(ti.Elements())
	mean, spread := 0.0, 0.1
	switch {
	case ti.Name == "rope_freqs.weight":
		v := normal(s.Seed, ti.Name, n)
		for i := range v {
			v[i] = 1 + float32(math.Abs(float64(v[i]))*0.5)
		}
		return v
	case len(ti.Shape) >= 2:
		spread = 1 / math.Sqrt(float64(ti.Shape[0]))
	case strings.HasSuffix(ti.Name, "norm.weight"):
		mean = 1
	}
	v := normal(s.Seed, ti.Name, n)
	for i := range v {
		v[i] = float32(mean + spread*float64(v[i]))
	}
	for _, d := range s.Deltas {
		w := normal(d.Seed, ti.Name, n)
		for i := range v {
			v[i] += float32(d.Scale * spread * float64(w[i]))
		}
	}
	return v
}

// normal is n standard normal draws from a stream keyed by seed and name.
func normal(seed uint64, name string, n int) []float32 {
	h := uint64(14695981039346656037)
	for _, c := range []byte(name) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	rng := rand.New(rand.NewPCG(seed, h))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// Write writes the model to path atomically.
func (s Spec) Write(path, name string) error {
	s = s.withDefaults()
	if err := s.check(); err != nil {
		return err
	}
	h := s.Header(name)
	for _, ti := range h.Tensors {
		if !s.Codec.CanEncode(ti.Type) {
			return fmt.Errorf("synth: %s: the codec cannot write %s (pass engine/llm's codec for K-quants and IQ types)", ti.Name, ti.Type)
		}
	}
	fw, err := gguf.Create(path, h)
	if err != nil {
		return err
	}
	defer fw.Abort()
	for _, ti := range h.Tensors {
		buf := make([]byte, ti.Bytes())
		if err := s.Codec.Encode(ti.Type, buf, s.Values(ti), int(ti.Shape[0])); err != nil {
			return fmt.Errorf("synth: %s: %w", ti.Name, err)
		}
		if err := fw.WriteTensor(ti.Name, buf); err != nil {
			return err
		}
	}
	return fw.Commit()
}
