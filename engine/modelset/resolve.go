package modelset

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/hub"
	"github.com/evomerge/evomerge/zoo"
)

// ResolveFunc maps a model reference to a local GGUF file.
type ResolveFunc func(ctx context.Context, ref string) (string, error)

// Resolver resolves every kind of model reference: zoo:NAME (a bundled
// model, found by zoo.Find), and everything hub.Resolver takes — local
// paths and Hugging Face references — through hubResolve (nil: a
// hub.NewResolver configured from the environment).
func Resolver(hubResolve ResolveFunc) ResolveFunc {
	if hubResolve == nil {
		hubResolve = hub.NewResolver().Resolve
	}
	return func(ctx context.Context, ref string) (string, error) {
		if name, ok := zoo.ParseModelRef(ref); ok {
			return zoo.Find(name)
		}
		return hubResolve(ctx, ref)
	}
}

// IsRemote reports whether ref is fetched from the hub (rather than a
// local file or a zoo model).
func IsRemote(ref string) bool {
	if _, ok := zoo.ParseModelRef(ref); ok {
		return false
	}
	return !hub.IsLocalPath(ref)
}

// Entry is the configuration entry for a model given by reference, named
// by NameFor and kept unique against taken: a hub reference goes to hf,
// anything else (a path, zoo:NAME) to path.
func Entry(ref string, taken func(name string) bool) config.Model {
	name := NameFor(ref)
	for i := 2; taken != nil && taken(name); i++ {
		name = fmt.Sprintf("%s-%d", NameFor(ref), i)
	}
	if IsRemote(ref) {
		return config.Model{Name: name, HF: ref}
	}
	return config.Model{Name: name, Path: ref}
}

// NameFor derives a model name from a reference: a zoo model's name, a
// file's name without .gguf, or a repository's name (with its
// quantization tag, or the file chosen in it).
func NameFor(ref string) string {
	if name, ok := zoo.ParseModelRef(ref); ok {
		return clean(name)
	}
	if IsRemote(ref) {
		if r, err := hub.ParseRef(ref); err == nil {
			switch {
			case r.File != "":
				return clean(strings.TrimSuffix(filepath.Base(r.File), filepath.Ext(r.File)))
			case r.Quant != "":
				return clean(r.Repo[strings.LastIndex(r.Repo, "/")+1:] + "-" + r.Quant)
			}
			return clean(r.Repo[strings.LastIndex(r.Repo, "/")+1:])
		}
	}
	base := filepath.Base(ref)
	if strings.EqualFold(filepath.Ext(base), ".gguf") {
		base = base[:len(base)-len(".gguf")]
	}
	return clean(base)
}

// clean makes s usable as a model name (names become file names).
func clean(s string) string {
	s = strings.Map(func(c rune) rune {
		if c == ' ' || c == '/' || c == '\\' || c == ':' {
			return '-'
		}
		return c
	}, s)
	if s == "" || s == "." || s == ".." {
		return "model"
	}
	return s
}

// hubRepo is the repository a hub reference names ("" if it names none).
func hubRepo(ref string) string {
	r, err := hub.ParseRef(ref)
	if err != nil {
		return ""
	}
	return r.Repo
}
