package zoo

import (
	"strings"
	"testing"
)

func TestBundledTexts(t *testing.T) {
	want := []string{"bible", "moby", "opticks", "sotu"}
	if got := Domains(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("domains %v, want %v", got, want)
	}
	for _, d := range Experts() {
		val, err := Text(d, Validation)
		if err != nil {
			t.Fatal(err)
		}
		test, err := Text(d, Test)
		if err != nil {
			t.Fatal(err)
		}
		if len(val) < 50_000 || len(test) < 50_000 {
			t.Errorf("%s: validation %d and test %d bytes; too small for a stable perplexity", d, len(val), len(test))
		}
		// The splits must be disjoint: no 200-byte window of the test text
		// appears in the validation text.
		for i := 0; i+200 < len(test); i += 997 {
			if strings.Contains(val, test[i:i+200]) {
				t.Fatalf("%s: test text at %d also appears in the validation text", d, i)
			}
		}
	}
	if _, err := Text(HeldOut, Test); err != nil {
		t.Error(err)
	}
	if _, err := Text("nope", Test); err == nil || !strings.Contains(err.Error(), "zoo:bible/validation") {
		t.Errorf("unknown text: %v", err)
	}
	for _, tt := range []struct{ in, d, s string }{{"zoo:bible", "bible", "validation"}, {"zoo:moby/test", "moby", "test"}} {
		d, s, ok := ParseTextRef(tt.in)
		if !ok || d != tt.d || s != tt.s {
			t.Errorf("ParseTextRef(%q) = %q %q %v", tt.in, d, s, ok)
		}
	}
	if _, _, ok := ParseTextRef("texts/bible.txt"); ok {
		t.Error("a path parsed as a zoo reference")
	}
}
