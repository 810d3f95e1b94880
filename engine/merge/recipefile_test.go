package merge

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const mergekitYAML = `
# A mergekit config with GGUF paths as models.
slices:
  - sources:
      - model: a.gguf
        layer_range: [0, 4]
      - model: b.gguf
        layer_range: [0, 4]
merge_method: slerp
base_model: a.gguf
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: bfloat16
`

func TestMergekitYAML(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.gguf", "b.gguf"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644)
	}
	path := filepath.Join(dir, "cfg.yml")
	os.WriteFile(path, []byte(mergekitYAML), 0o644)
	r, err := LoadRecipe(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
	want := &Recipe{
		Method: "slerp", Base: a, OutType: "bf16",
		Params: Params{"t": {Filters: []Filtered{
			{Filter: "self_attn", Anchors: []float64{0, 0.5, 0.3, 0.7, 1}},
			{Filter: "mlp", Anchors: []float64{1, 0.5, 0.7, 0.3, 0}},
			{Anchors: []float64{0.5}},
		}}},
		Slices: []Slice{{Sources: []SliceSource{{Model: a, From: 0, To: 4}, {Model: b, From: 0, To: 4}}}},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got  %#v\nwant %#v", r, want)
	}
}

func TestRecipeTOMLRoundTrip(t *testing.T) {
	r := &Recipe{
		Name: "evolved", Method: "ties", Base: "base.gguf", OutType: "q8_0", Seed: 99,
		Params: Params{"lambda": Scalar(1.2), "normalize": Bool(true)},
		Models: []ModelRef{
			{Model: "x.gguf", Params: Params{"weight": Gradient(0.1, 0.9), "density": Scalar(0.5)}},
			{Model: "y.gguf", Params: Params{"weight": {Filters: []Filtered{{Filter: "attn", Anchors: []float64{0.3}}, {Anchors: []float64{0.7}}}}}},
		},
		Layers:  []LayerStep{{Model: "ps", Layer: 2, Scale: 0.75}},
		Sources: map[string]*Recipe{"ps": {Method: "linear", Models: []ModelRef{{Model: "x.gguf"}}}},
	}
	text, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "normalize = true") {
		t.Errorf("booleans should be written as booleans:\n%s", text)
	}
	back, err := ParseRecipe(string(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip differs:\n%s\ngot %#v", text, back)
	}
}

func TestRecipeFileErrors(t *testing.T) {
	text := `
merge_method = "ties"
base_model = 3
seed = -1
colour = "red"
[parameters]
weight = "heavy"
[[models]]
model = "a.gguf"
paramters = {}
[[slices]]
[[slices.sources]]
model = "a.gguf"
layer_range = [4, 2]
`
	_, err := ParseRecipe(text)
	if err == nil {
		t.Fatal("bad recipe accepted")
	}
	for _, want := range []string{
		"base_model: must be a model path",
		"seed: must be a non-negative integer",
		"colour: unknown key",
		"parameters.weight: must be a number",
		"models[0].paramters: unknown key",
		"slices[0].sources[0].layer_range: must be two integers 0 ≤ from < to",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := ParseRecipe(`base_model = "x"`); err == nil || !strings.Contains(err.Error(), "merge_method: missing") {
		t.Errorf("missing method: %v", err)
	}
}
