// Package zoo locates the bundled models: stories15M (Karpathy's
// TinyStories model, converted from the llama2.c checkpoint in an npm
// package) and three domain experts fine-tuned from it, committed as
// compact patches (see patch.go) and materialised by `make zoo` into
// zoo/build/. zoo/README.md has their provenance and numbers.
package zoo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Base is the base model's name.
const Base = "stories15M"

// Experts are the domain experts' names; each is also the name of the
// domain (text) it was tuned on.
func Experts() []string { return []string{"bible", "moby", "sotu"} }

// Dir is the directory holding the built models: $EVOMERGE_ZOO when set,
// else zoo/build beside this package's source (tests and `make run` in a
// checkout), else zoo/build under the working directory.
func Dir() string {
	if d := os.Getenv("EVOMERGE_ZOO"); d != "" {
		return d
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		d := filepath.Join(filepath.Dir(file), "build")
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return filepath.Join("zoo", "build")
}

// Model is the path of a built zoo model ("stories15M", "bible", ...).
func Model(name string) string { return filepath.Join(Dir(), name+".gguf") }

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
