package zoo

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

// TestLocations: the zoo's models are looked for in the documented order —
// EVOMERGE_ZOO alone when set; else next to the binary, the user data
// directory, then this checkout — and the first holding the base is used.
func TestLocations(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	t.Setenv(EnvDir, "")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ = filepath.EvalSymlinks(exe)
	bin := filepath.Dir(exe)
	_, file, _, _ := runtime.Caller(0)
	want := []string{
		filepath.Join(bin, "..", "share", "evomerge", "zoo"),
		filepath.Join(bin, "..", "zoo", "build"),
		filepath.Join(data, "evomerge", "zoo"),
		filepath.Join(filepath.Dir(file), "build"),
	}
	for i := range want {
		want[i] = filepath.Clean(want[i])
	}
	if got := Locations(); !slices.Equal(got, want) {
		t.Fatalf("Locations() = %q\nwant %q", got, want)
	}
	// The user data directory wins over the checkout once it holds the base.
	userZoo := filepath.Join(data, "evomerge", "zoo")
	if err := os.MkdirAll(userZoo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(userZoo, Base+".gguf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if Dir() != userZoo {
		t.Errorf("Dir() = %s, want %s", Dir(), userZoo)
	}
	if p, err := Find(Base); err != nil || p != filepath.Join(userZoo, Base+".gguf") {
		t.Errorf("Find = %s, %v", p, err)
	}
	if _, err := Find("bible"); err == nil || !strings.Contains(err.Error(), "zoo model bible not found (looked in ") {
		t.Errorf("a model missing from the zoo in use: %v", err)
	}
	if _, err := Find("nope"); err == nil || !strings.Contains(err.Error(), "zoo:nope: no such zoo model (the zoo has bible, moby, sotu, stories15M)") {
		t.Errorf("unknown: %v", err)
	}
	// EVOMERGE_ZOO is the only place looked in when set.
	t.Setenv(EnvDir, "/nonexistent/zoo")
	if got := Locations(); !slices.Equal(got, []string{"/nonexistent/zoo"}) || Dir() != "/nonexistent/zoo" {
		t.Errorf("with %s set: %q", EnvDir, got)
	}
	if _, err := Find(Base); err == nil || !strings.Contains(err.Error(), "looked in /nonexistent/zoo)") || !strings.Contains(err.Error(), "set EVOMERGE_ZOO") {
		t.Errorf("missing: %v", err)
	}
}
