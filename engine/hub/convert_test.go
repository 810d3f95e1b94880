package hub

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/hub/hubtest"
)

// safetensors encodes float32 tensors in the safetensors format.
func safetensors(t *testing.T, tensors map[string][]int) []byte {
	t.Helper()
	header := map[string]any{}
	var data bytes.Buffer
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range tensors {
			if !yield(k) {
				return
			}
		}
	}) {
		shape := tensors[name]
		n := 1
		for _, d := range shape {
			n *= d
		}
		start := data.Len()
		for i := range n {
			_ = binary.Write(&data, binary.LittleEndian, math.Float32bits(float32(i%7)/7))
		}
		header[name] = map[string]any{"dtype": "F32", "shape": shape, "data_offsets": []int{start, data.Len()}}
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_ = binary.Write(&out, binary.LittleEndian, uint64(len(h)))
	out.Write(h)
	out.Write(data.Bytes())
	return out.Bytes()
}

// tinyLlama is a one-layer llama with an 8-token BPE vocabulary.
func tinyLlama(t *testing.T, arch string) map[string][]byte {
	config := map[string]any{
		"architectures": []string{arch}, "model_type": "llama",
		"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
		"num_attention_heads": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
		"vocab_size": 8, "max_position_embeddings": 32, "rope_theta": 10000.0,
	}
	tokenizer := map[string]any{
		"model": map[string]any{
			"type":   "BPE",
			"vocab":  map[string]int{"a": 0, "b": 1, "c": 2, "d": 3, "ab": 4, "cd": 5, "abcd": 6},
			"merges": []string{"a b", "c d", "ab cd"},
		},
		"added_tokens": []map[string]any{{"id": 7, "content": "</s>", "special": true}},
	}
	tokConfig := map[string]any{"eos_token": "</s>", "add_eos_token": false}
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return map[string][]byte{
		"config.json":           js(config),
		"tokenizer.json":        js(tokenizer),
		"tokenizer_config.json": js(tokConfig),
		"README.md":             []byte("# tiny"),
		"model.safetensors": safetensors(t, map[string][]int{
			"model.embed_tokens.weight":                      {8, 8},
			"model.layers.0.input_layernorm.weight":          {8},
			"model.layers.0.self_attn.q_proj.weight":         {8, 8},
			"model.layers.0.self_attn.k_proj.weight":         {8, 8},
			"model.layers.0.self_attn.v_proj.weight":         {8, 8},
			"model.layers.0.self_attn.o_proj.weight":         {8, 8},
			"model.layers.0.post_attention_layernorm.weight": {8},
			"model.layers.0.mlp.gate_proj.weight":            {16, 8},
			"model.layers.0.mlp.up_proj.weight":              {16, 8},
			"model.layers.0.mlp.down_proj.weight":            {8, 16},
			"model.norm.weight":                              {8},
			"lm_head.weight":                                 {8, 8},
		}),
	}
}

func TestResolveConvertsSafetensors(t *testing.T) {
	h := hubtest.New(t)
	repo := h.AddRepo("acme/tiny-llama", tinyLlama(t, "LlamaForCausalLM"))
	r := testResolver(t, h)
	ctx := context.Background()
	res, err := r.ResolveInfo(ctx, "acme/tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Converted || res.Commit != repo.Commit || !strings.HasPrefix(res.Path, r.ConvertDir) {
		t.Errorf("resolution %+v", res)
	}
	f, err := gguf.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if a := f.Metadata.Architecture(); a != "llama" {
		t.Errorf("architecture %q", a)
	}
	if n, _ := f.Metadata.ArchUint("block_count"); n != 1 {
		t.Errorf("block_count %d", n)
	}
	var names []string
	for _, ti := range f.Tensors {
		names = append(names, ti.Name)
	}
	for _, want := range []string{"token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight", "output_norm.weight", "output.weight"} {
		if !slices.Contains(names, want) {
			t.Errorf("tensor %s missing from %v", want, names)
		}
	}
	if n := countPrefix(h.Requests(), "HEAD /acme/tiny-llama/resolve/"+repo.Commit+"/README.md"); n != 0 {
		t.Error("fetched README.md for conversion")
	}

	// The converted file is reused, offline and with the hub gone.
	off := *r
	off.Offline = true
	h.ResetLog()
	if p, err := off.Resolve(ctx, "acme/tiny-llama"); err != nil || p != res.Path {
		t.Errorf("offline: %s, %v", p, err)
	}
	if reqs := h.Requests(); len(reqs) != 0 {
		t.Errorf("offline requests %v", reqs)
	}
	// With the conversion deleted, offline conversion from the cached
	// snapshot still works.
	if err := os.Remove(res.Path); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if p, err := r.Resolve(ctx, "acme/tiny-llama"); err != nil || p != res.Path {
		t.Errorf("hub down: %s, %v", p, err)
	}
}

func TestResolveConvertUnsupported(t *testing.T) {
	h := hubtest.New(t)
	h.AddRepo("acme/odd", tinyLlama(t, "NoSuchModelForCausalLM"))
	r := testResolver(t, h)
	_, err := r.Resolve(context.Background(), "acme/odd")
	if !errors.Is(err, ErrUnsupportedModel) || !strings.Contains(err.Error(), "NoSuchModelForCausalLM") {
		t.Fatalf("err = %v, want ErrUnsupportedModel naming the architecture", err)
	}
	for _, q := range h.Requests() {
		if strings.Contains(q, ".safetensors") || strings.HasPrefix(q, "GET /cdn/") {
			t.Errorf("fetched weights of an unconvertible model: %s", q)
		}
	}
}
