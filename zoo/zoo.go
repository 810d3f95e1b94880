// Package zoo locates the bundled models: stories15M (Karpathy's
// TinyStories model, converted from the llama2.c checkpoint in an npm
// package) and three domain experts fine-tuned from it, committed as
// compact patches (see patch.go) and materialised by `make zoo` into
// zoo/build/. zoo/README.md has their provenance and numbers.
//
// It also holds what is specific to the zoo's run: its models as
// references (zoo:NAME), its base, and coherence prompts drawn from its
// domains. The generic defaults for other models live with the code that
// uses them (eval.DefaultCoherencePrompts).
//
// # Where the models are found
//
// The evaluation texts are embedded in the binary; the model files are
// not, so a binary finds them at run time, wherever it is started from,
// in this order (Locations):
//
//  1. $EVOMERGE_ZOO, when set (and then only there);
//  2. next to the binary: ../share/evomerge/zoo (what `make install`
//     writes under its PREFIX), then ../zoo/build (bin/ in a checkout);
//  3. the user data directory: $XDG_DATA_HOME/evomerge/zoo, by default
//     ~/.local/share/evomerge/zoo;
//  4. zoo/build in the checkout the binary was built from, when it still
//     exists (go test and go run).
//
// The first directory holding the zoo's base model wins.
package zoo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Base is the base model's name.
const Base = "stories15M"

// Experts are the domain experts' names; each is also the name of the
// domain (text) it was tuned on.
func Experts() []string { return []string{"bible", "moby", "sotu"} }

// Names lists every zoo model, the experts first, then the base.
func Names() []string { return append(Experts(), Base) }

// EnvDir is the environment variable that names the zoo's directory.
const EnvDir = "EVOMERGE_ZOO"

// ModelPrefix marks a model reference to a zoo model: "zoo:bible".
const ModelPrefix = "zoo:"

// ModelRef is the reference to a zoo model, as configurations write it.
func ModelRef(name string) string { return ModelPrefix + name }

// ParseModelRef returns the zoo model a reference names; ok is false for
// references that are not zoo references.
func ParseModelRef(ref string) (name string, ok bool) {
	return strings.CutPrefix(ref, ModelPrefix)
}

// Locations lists the directories searched for the zoo's models, in order
// (see the package documentation).
func Locations() []string {
	if d := os.Getenv(EnvDir); d != "" {
		return []string{d}
	}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		bin := filepath.Dir(exe)
		dirs = append(dirs, filepath.Join(bin, "..", "share", "evomerge", "zoo"), filepath.Join(bin, "..", "zoo", "build"))
	}
	if d := dataHome(); d != "" {
		dirs = append(dirs, filepath.Join(d, "evomerge", "zoo"))
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		dirs = append(dirs, filepath.Join(filepath.Dir(file), "build"))
	}
	for i, d := range dirs {
		dirs[i] = filepath.Clean(d)
	}
	return dirs
}

// dataHome is $XDG_DATA_HOME, else ~/.local/share ("" when neither is known).
func dataHome() string {
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share")
	}
	return ""
}

// Dir is the directory holding the built models: the first of Locations
// that holds the base model, else the first of Locations.
func Dir() string {
	dirs := Locations()
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, Base+".gguf")); err == nil {
			return d
		}
	}
	return dirs[0]
}

// Model is the path of a built zoo model ("stories15M", "bible", ...).
func Model(name string) string { return filepath.Join(Dir(), name+".gguf") }

// Find returns the path of a built zoo model, or an error that names the
// places searched and how to fill them.
func Find(name string) (string, error) {
	if !isModel(name) {
		return "", fmt.Errorf("%s%s: no such zoo model (the zoo has %s)", ModelPrefix, name, strings.Join(Names(), ", "))
	}
	p := Model(name)
	if _, err := os.Stat(p); err != nil {
		return "", missing(name)
	}
	return p, nil
}

func isModel(name string) bool {
	for _, n := range Names() {
		if n == name {
			return true
		}
	}
	return false
}

func missing(name string) error {
	return fmt.Errorf("zoo model %s not found (looked in %s): run `make zoo` in a checkout, install it with `make install`, or set %s to a directory holding %s.gguf",
		name, strings.Join(Locations(), ", "), EnvDir, name)
}

// Check reports the zoo models that are missing, with the command that builds them.
func Check() error {
	var errs []error
	for _, name := range append([]string{Base}, Experts()...) {
		if _, err := os.Stat(Model(name)); err != nil {
			errs = append(errs, fmt.Errorf("zoo model %s missing (%s): run `make zoo`", name, Model(name)))
		}
	}
	return errors.Join(errs...)
}

// CoherencePrompts are the coherence prompts of the zoo's run: openings
// from its experts' domains (Genesis, Moby Dick, the State of the Union
// addresses), the held-out Opticks and TinyStories. Runs over other models
// use eval.DefaultCoherencePrompts.
func CoherencePrompts() []string {
	return []string{
		"Once upon a time",
		"The old man looked at the sea and said",
		"In the beginning",
		"She opened the door and saw",
		"The people of this nation",
		"The light passed through the glass",
		"Tom and his dog went to the park.",
		"Call me",
	}
}
