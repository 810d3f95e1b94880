package merge

import (
	"bytes"
	"testing"

	"gopkg.in/yaml.v3"
)

// The recipe readers take files people write by hand and configs copied
// from elsewhere: whatever the bytes, they return a recipe or an error,
// never a panic, and a recipe they return encodes to TOML that reads back
// to the same recipe.

const fuzzRecipeTOML = `merge_method = "ties"
base_model = "base.gguf"
out_type = "q8_0"
seed = 42
[parameters]
lambda = 1.0
[[models]]
model = "a.gguf"
parameters = { weight = [0.2, 0.8], density = { filter = "mlp", value = 0.5 } }
[[models]]
model = "b.gguf"
parameters = { weight = 0.5, density = 0.7 }
`

const fuzzDFSTOML = `merge_method = "ps_dfs"
[[layers]]
model = "a.gguf"
layer = 0
scale = 1.0
[[layers]]
model = "mix"
layer = 1
[sources.mix]
merge_method = "linear"
[[sources.mix.models]]
model = "a.gguf"
parameters = { weight = 0.5 }
[[sources.mix.models]]
model = "b.gguf"
parameters = { weight = 0.5 }
`

// checkRoundTrip fails unless r encodes to TOML that reads back to a
// recipe encoding the same.
func checkRoundTrip(t *testing.T, r *Recipe) {
	t.Helper()
	text, err := r.Encode()
	if err != nil {
		t.Fatalf("a recipe that was read does not encode: %v", err)
	}
	again, err := ParseRecipe(string(text))
	if err != nil {
		t.Fatalf("the encoded recipe does not read back: %v\n%s", err, text)
	}
	text2, err := again.Encode()
	if err != nil || !bytes.Equal(text, text2) {
		t.Fatalf("the recipe changed in a round trip (%v):\n%s\nthen\n%s", err, text, text2)
	}
}

func FuzzRecipeTOML(f *testing.F) {
	for _, s := range []string{fuzzRecipeTOML, fuzzDFSTOML, "merge_method = \"linear\"\n[[models]]\nmodel = \"a.gguf\"\n", "", "[[slices]]\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := ParseRecipe(text)
		if err != nil {
			return
		}
		checkRoundTrip(t, r)
	})
}

func FuzzRecipeYAML(f *testing.F) {
	f.Add(mergekitYAML)
	f.Add("merge_method: linear\nmodels:\n  - model: a.gguf\n    parameters:\n      weight: 1.0\n")
	f.Add("slices:\n  - sources:\n      - model: a.gguf\n        layer_range: [0, 2]\nmerge_method: passthrough\n")
	f.Fuzz(func(t *testing.T, text string) {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(text), &m); err != nil {
			return
		}
		r, err := RecipeFromMap(m)
		if err != nil {
			return
		}
		checkRoundTrip(t, r)
	})
}
