package config

import (
	"reflect"
	"testing"
)

// FuzzParse: whatever the text, Parse returns a configuration or an
// error, never a panic; a configuration it accepts encodes to TOML that
// parses to the same configuration.
func FuzzParse(f *testing.F) {
	raw, err := Default().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(raw))
	f.Add("[evolution]\npopulation = 6\ngenerations = 2\n[output]\ndir = \"out\"\n")
	f.Add("[[models]]\nname = \"a\"\nhf = \"org/name:Q4_K_M\"\n")
	f.Add("[merge]\ntechniques = [\"ties\", \"dfs\"]\nlayer_groups = 3\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text)
		if err != nil {
			return
		}
		raw, err := c.Encode()
		if err != nil {
			t.Fatalf("an accepted configuration does not encode: %v", err)
		}
		again, err := Parse(string(raw))
		if err != nil {
			t.Fatalf("the encoded configuration is refused: %v\n%s", err, raw)
		}
		// Fill is not part of the file: an encoded configuration names its
		// models, so they read back as the user's own.
		for i := range c.Models {
			c.Models[i].Fill = false
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("the configuration changed in a round trip:\n%+v\n%+v", c, again)
		}
	})
}
