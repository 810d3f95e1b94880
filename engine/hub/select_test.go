package hub

import (
	"errors"
	"slices"
	"testing"
)

func TestMatchesQuant(t *testing.T) {
	for _, tc := range []struct {
		name, tag string
		want      bool
	}{
		{"model-Q8_0.gguf", "q8_0", true},
		{"model.q8_0.gguf", "Q8_0", true},
		{"Q8_0/model.gguf", "Q8_0", true},
		{"model-Q4_K_M.gguf", "Q4_K_M", true},
		{"model-Q4_K_M.gguf", "Q4_K", false},
		{"model-Q4_0_4_4.gguf", "Q4_0", false},
		{"model-BF16.gguf", "F16", false},
		{"model-f16.gguf", "F16", true},
		{"model-IQ4_XS.gguf", "Q4_XS", false},
		{"model-UD-Q4_K_XL.gguf", "UD-Q4_K_XL", true},
		{"model-Q8_0L.gguf", "Q8_0", false},
	} {
		if got := matchesQuant(tc.name, tc.tag); got != tc.want {
			t.Errorf("matchesQuant(%q, %q) = %v", tc.name, tc.tag, got)
		}
	}
}

func TestChoose(t *testing.T) {
	es := func(nameSizes ...any) []entry {
		var out []entry
		for i := 0; i < len(nameSizes); i += 2 {
			out = append(out, entry{Name: nameSizes[i].(string), Size: int64(nameSizes[i+1].(int))})
		}
		return out
	}
	full := es("a-Q2_K.gguf", 10, "a-Q4_K_M.gguf", 40, "a-Q8_0.gguf", 80, "a-F16.gguf", 160, "mmproj-a-f16.gguf", 5, "README.md", 1)
	for _, tc := range []struct {
		name    string
		ref     Ref
		files   []entry
		want    string   // chosen GGUF
		convert []string // or files to convert
		err     error
	}{
		{name: "default prefers Q8_0", files: full, want: "a-Q8_0.gguf"},
		{name: "Q4_K_M without Q8_0", files: es("a-Q2_K.gguf", 10, "a-Q4_K_M.gguf", 40, "a-F16.gguf", 160), want: "a-Q4_K_M.gguf"},
		{name: "then F16", files: es("a-Q2_K.gguf", 10, "a-F16.gguf", 160, "a-BF16.gguf", 150), want: "a-F16.gguf"},
		{name: "then the smallest", files: es("a-Q5_K_S.gguf", 50, "a-Q3_K_L.gguf", 30, "a-Q6_K.gguf", 60), want: "a-Q3_K_L.gguf"},
		{name: "smallest Q8_0 of several", files: es("b-Q8_0.gguf", 90, "a-Q8_0.gguf", 80), want: "a-Q8_0.gguf"},
		{name: "projector never by default", files: es("mmproj-Q8_0.gguf", 1, "a-Q6_K.gguf", 60), want: "a-Q6_K.gguf"},
		{name: "split skipped by default", files: es("a-Q8_0-00001-of-00002.gguf", 5, "a-Q2_K.gguf", 10), want: "a-Q2_K.gguf"},
		{name: "only split", files: es("a-Q8_0-00001-of-00002.gguf", 5, "a-Q8_0-00002-of-00002.gguf", 5), err: ErrSplitGGUF},
		{name: "quant", ref: Ref{Quant: "q2_k"}, files: full, want: "a-Q2_K.gguf"},
		{name: "quant F16 not BF16", ref: Ref{Quant: "F16"}, files: es("a-BF16.gguf", 1, "a-F16.gguf", 2), want: "a-F16.gguf"},
		{name: "quant split", ref: Ref{Quant: "Q8_0"}, files: es("a-Q8_0-00001-of-00002.gguf", 5, "a-Q2_K.gguf", 10), err: ErrSplitGGUF},
		{name: "quant missing", ref: Ref{Quant: "Q5_K_M"}, files: full, err: ErrNoMatch},
		{name: "quant ambiguous", ref: Ref{Quant: "Q8_0"}, files: es("a-Q8_0.gguf", 1, "b-Q8_0.gguf", 2), err: ErrAmbiguous},
		{name: "explicit projector", ref: Ref{File: "mmproj-a-f16.gguf"}, files: full, want: "mmproj-a-f16.gguf"},
		{name: "explicit missing", ref: Ref{File: "x.gguf"}, files: full, err: ErrNotFound},
		{name: "explicit split", ref: Ref{File: "a-00001-of-00002.gguf"}, files: es("a-00001-of-00002.gguf", 1), err: ErrSplitGGUF},
		{
			name:    "safetensors",
			files:   es("config.json", 1, "tokenizer.json", 1, "generation_config.json", 1, "model-00001-of-00002.safetensors", 9, "model-00002-of-00002.safetensors", 9, "consolidated.safetensors", 18, "README.md", 1, "onnx/model.json", 1),
			convert: []string{"config.json", "tokenizer.json", "generation_config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"},
		},
		{name: "safetensors with quant", ref: Ref{Quant: "Q8_0"}, files: es("config.json", 1, "tokenizer.json", 1, "model.safetensors", 9), err: ErrNoMatch},
		{name: "safetensors without tokenizer", files: es("config.json", 1, "model.safetensors", 9), err: ErrUnsupportedModel},
		{name: "safetensors without config", files: es("tokenizer.model", 1, "model.safetensors", 9), err: ErrUnsupportedModel},
		{name: "pytorch only", files: es("config.json", 1, "pytorch_model.bin", 9), err: ErrUnsupportedModel},
		{name: "nothing", files: es("README.md", 1), err: ErrNoMatch},
	} {
		tc.ref.Repo = "org/name"
		got, err := choose(tc.ref, tc.files)
		switch {
		case tc.err != nil:
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "":
			if got.gguf == nil || got.gguf.Name != tc.want {
				t.Errorf("%s: chose %+v, want %s", tc.name, got, tc.want)
			}
		default:
			var ns []string
			for _, e := range got.convert {
				ns = append(ns, e.Name)
			}
			if got.gguf != nil || !slices.Equal(ns, tc.convert) {
				t.Errorf("%s: convert %v, want %v", tc.name, ns, tc.convert)
			}
		}
	}
}
