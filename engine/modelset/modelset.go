// Package modelset decides what a run merges. It holds the rules the
// command line, the configuration file, the workbench's forms and the Go
// API (evolve.Run) share, applied once when a run starts:
//
//   - Every model reference is resolved (zoo:NAME, a path, a hub
//     reference; see Resolver) and its GGUF header read.
//   - Models marked Fill (the zoo's defaults that fill the places the user
//     left empty) stay only when they fit the user's models: same
//     architecture, same tensor shapes, same depth. A filler that does not
//     fit is left out with the reason; when that leaves one user model and
//     nothing to merge it with, the error says what to give.
//   - The base is merge.base when set. Otherwise, when every source names
//     the same base model in its metadata (general.base_model.N.repo_url,
//     or .organization and .name, as llama.cpp's converter writes them),
//     that model is the base: one of the run's models when it is that
//     repository, else fetched from the hub. Otherwise the run has no base.
//   - Models of different architectures, or with a tensor whose shape
//     differs, cannot be merged: one line names the tensor and both
//     shapes. Models that differ only in depth can: the data-flow
//     techniques (frankenmerge, dfs) stack their layers, and the
//     parameter-space ones are left out.
//   - Each technique that cannot run on the models — it needs a base and
//     there is none, it takes a different number of models, it needs
//     equal depths — is dropped with the reason; no technique left is an
//     error that lists the reasons.
//   - Empty coherence prompts become the zoo's when every model is a zoo
//     model, else eval's generic ones.
//
// The result is the effective configuration (what config.toml records, so
// that a resumed run is the same run) and what was decided, for the run's
// header.
package modelset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/zoo"
)

// Dropped is a technique or a model left out of a run, and why.
type Dropped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Model is one model of a run as resolved.
type Model struct {
	Name   string `json:"name"`
	Ref    string `json:"ref"`  // as configured: a path, zoo:NAME or a hub reference
	Path   string `json:"path"` // the local file
	Arch   string `json:"architecture"`
	Layers int    `json:"layers"`
	Base   bool   `json:"base,omitempty"`
}

// Set is a run's models after the rules.
type Set struct {
	// Config is the effective configuration: the models kept (and a
	// detected base), merge.base, the techniques kept, the coherence
	// prompts.
	Config config.Config
	// Models are the sources in configuration order, then the base.
	Models []Model
	// BaseNote says how the base was chosen, or why there is none.
	BaseNote string
	// Dropped are the techniques left out, LeftOut the zoo models.
	Dropped []Dropped
	LeftOut []Dropped
}

// Paths maps each model's name to its file.
func (s *Set) Paths() map[string]string {
	out := map[string]string{}
	for _, m := range s.Models {
		out[m.Name] = m.Path
	}
	return out
}

// Depths maps each model's file to its number of layers.
func (s *Set) Depths() map[string]int {
	out := map[string]int{}
	for _, m := range s.Models {
		out[m.Path] = m.Layers
	}
	return out
}

// Layers is the depth of the deepest model.
func (s *Set) Layers() int {
	n := 0
	for _, m := range s.Models {
		n = max(n, m.Layers)
	}
	return n
}

// model is a configured model while the rules run.
type model struct {
	config.Model
	path string
	h    *header
}

// Prepare applies the rules (see the package documentation) to cfg, whose
// other settings must be valid, resolving references with resolve (nil:
// Resolver(nil)).
func Prepare(ctx context.Context, cfg config.Config, resolve ResolveFunc) (*Set, error) {
	if resolve == nil {
		resolve = Resolver(nil)
	}
	s := &Set{}
	users := slices.ContainsFunc(cfg.Models, func(m config.Model) bool { return !m.Fill })
	var models []*model
	var problems []string
	for _, m := range cfg.Models {
		p, err := resolve(ctx, m.Ref())
		var h *header
		if err == nil {
			h, err = readHeader(p)
		}
		switch {
		case err != nil && m.Fill && users:
			s.LeftOut = append(s.LeftOut, Dropped{m.Name, err.Error()})
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", describeModel(m), err))
		default:
			models = append(models, &model{Model: m, path: p, h: h})
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	base := cfg.Merge.Base
	models, base, err := s.fitFillers(models, base, users)
	if err != nil {
		return nil, err
	}
	if base == "" {
		models, base = s.detectBase(ctx, models, resolve)
	} else {
		s.BaseNote = fmt.Sprintf("base %s, as given", base)
	}
	depths, err := checkShapes(models)
	if err != nil {
		return nil, err
	}
	sources := len(models)
	if base != "" {
		sources--
	}
	switch {
	case sources < 1:
		return nil, fmt.Errorf("no model besides the base %s: give at least one model to merge", base)
	case sources == 1 && base == "":
		return nil, fmt.Errorf("model %s alone, without a base, is nothing to merge: give a second model, or its base model (--base, merge.base)", models[0].Name)
	}
	kept, err := s.techniques(cfg, base != "", sources, depths)
	if err != nil {
		return nil, err
	}
	if cfg.Evolution.TunesOneTechnique() {
		if cfg.Evolution.CMAESTechnique, err = s.cmaesTechnique(cfg, kept); err != nil {
			return nil, err
		}
	}

	out := cfg
	out.Models = nil
	for _, m := range models {
		cm := m.Model
		cm.Fill = false
		out.Models = append(out.Models, cm)
		if m.Name != base {
			s.Models = append(s.Models, m.info(false))
		}
	}
	for _, m := range models {
		if m.Name == base {
			s.Models = append(s.Models, m.info(true))
		}
	}
	out.Merge.Base = base
	out.Merge.Techniques = kept
	if len(out.Evaluation.CoherencePrompts) == 0 {
		out.Evaluation.CoherencePrompts = eval.DefaultCoherencePrompts()
		if !slices.ContainsFunc(models, func(m *model) bool { _, ok := zoo.ParseModelRef(m.Ref()); return !ok }) {
			out.Evaluation.CoherencePrompts = zoo.CoherencePrompts()
		}
	}
	if ps := out.Validate(); len(ps) > 0 {
		return nil, ps.Err()
	}
	s.Config = out
	return s, nil
}

func (m *model) info(base bool) Model {
	return Model{Name: m.Name, Ref: m.Ref(), Path: m.path, Arch: m.h.arch, Layers: m.h.layers, Base: base}
}

// describeModel names a configured model for errors: "model NAME", with
// its reference when the name does not already say it.
func describeModel(m config.Model) string {
	if m.Ref() == m.Name || strings.HasSuffix(m.Ref(), ":"+m.Name) {
		return "model " + m.Name
	}
	return fmt.Sprintf("model %s (%s)", m.Name, m.Ref())
}

// fitFillers leaves out the fillers that do not fit the first user model
// (the base, when it is a filler, included). It returns the models kept
// and the base, "" when it was left out.
func (s *Set) fitFillers(models []*model, base string, users bool) ([]*model, string, error) {
	if !users {
		return models, base, nil
	}
	var ref *model
	nUsers := 0
	for _, m := range models {
		if !m.Fill {
			nUsers++
			if ref == nil {
				ref = m
			}
		}
	}
	var kept []*model
	var why string
	for _, m := range models {
		if m.Fill {
			if msg := fits(ref, m); msg != "" {
				s.LeftOut = append(s.LeftOut, Dropped{m.Name, fmt.Sprintf("does not fit model %s: %s", ref.Name, msg)})
				why = msg
				if m.Name == base {
					base = ""
				}
				continue
			}
		}
		kept = append(kept, m)
	}
	if len(kept) == 1 && nUsers == 1 && why != "" {
		return nil, "", fmt.Errorf("model %s (%s) cannot be merged with the zoo's models (%s): give the models to merge it with, --model2 (and --model3) and --base, or models and merge.base in a configuration",
			ref.Name, ref.h.describe(), why)
	}
	return kept, base, nil
}

// fits says why the filler m does not fit the user's model ref ("" when
// it does): a filler must match it in every shape and in its vocabulary.
func fits(ref, m *model) string {
	if mm := compare(ref.Name, ref.h, m.Name, m.h); mm != nil {
		return mm.msg
	}
	if rel, err := merge.CompareVocabularies(ref.path, m.path); rel != merge.VocabIdentical || err != nil {
		if err == nil {
			err = errors.New("its vocabulary differs")
		}
		return err.Error()
	}
	return ""
}

// detectBase finds the base every source names in its metadata. It
// returns the models (with the base added when it was fetched) and the
// base's name, "" for none, and sets BaseNote.
func (s *Set) detectBase(ctx context.Context, models []*model, resolve ResolveFunc) ([]*model, string) {
	s.BaseNote = "no base: none was given (--base, merge.base) and the models' metadata (general.base_model) names none"
	var named []string // every id some model names, first spelling kept
	for _, m := range models {
		for _, id := range m.h.bases {
			if !slices.ContainsFunc(named, func(x string) bool { return strings.EqualFold(x, id) }) {
				named = append(named, id)
			}
		}
	}
	// An id is the common base when every model names it or is it.
	var common []string
	for _, id := range named {
		if !slices.ContainsFunc(models, func(m *model) bool { return !m.names(id) && !m.isRepo(id) }) {
			common = append(common, id)
		}
	}
	switch {
	case len(named) == 0:
		return models, ""
	case len(common) != 1:
		var parts []string
		for _, m := range models {
			parts = append(parts, fmt.Sprintf("%s: %s", m.Name, strings.Join(orNone(m.h.bases), ", ")))
		}
		s.BaseNote = fmt.Sprintf("no base: the models do not name one common base model (%s); --base chooses one", strings.Join(parts, "; "))
		return models, ""
	}
	id := common[0]
	for _, m := range models {
		if m.isRepo(id) {
			s.BaseNote = fmt.Sprintf("base %s: model %s is %s, which the other models name as their base (general.base_model)", m.Name, m.Name, id)
			return models, m.Name
		}
	}
	entry := Entry(id, func(name string) bool {
		return slices.ContainsFunc(models, func(m *model) bool { return m.Name == name })
	})
	p, err := resolve(ctx, entry.Ref())
	var h *header
	if err == nil {
		h, err = readHeader(p)
	}
	if err == nil {
		if mm := compare(models[0].Name, models[0].h, entry.Name, h); mm != nil {
			err = errors.New(mm.msg)
		}
	}
	if err != nil {
		s.BaseNote = fmt.Sprintf("no base: every model names %s as its base (general.base_model), but it cannot be used: %v; --base chooses one", id, err)
		return models, ""
	}
	s.BaseNote = fmt.Sprintf("base %s: every model names it as its base (general.base_model); fetched as %s", id, entry.Name)
	return append(models, &model{Model: entry, path: p, h: h}), entry.Name
}

func orNone(ids []string) []string {
	if len(ids) == 0 {
		return []string{"none"}
	}
	return ids
}

// names reports whether the model's metadata names id as its base.
func (m *model) names(id string) bool {
	return slices.ContainsFunc(m.h.bases, func(x string) bool { return strings.EqualFold(x, id) })
}

// isRepo reports whether the model is the hub repository id: it was given
// by that id, or its metadata names that repository as its own.
func (m *model) isRepo(id string) bool {
	if IsRemote(m.Ref()) {
		if r := hubRepo(m.Ref()); strings.EqualFold(r, id) {
			return true
		}
	}
	return slices.ContainsFunc(m.h.self, func(x string) bool { return strings.EqualFold(x, id) })
}

// checkShapes compares every model with the first: a difference other
// than depth is an error. It returns "" when all have the same depth, else
// their depths for messages ("layers: a 6, b 2").
func checkShapes(models []*model) (string, error) {
	first := models[0]
	unequal := false
	for _, m := range models[1:] {
		if mm := compare(first.Name, first.h, m.Name, m.h); mm != nil {
			if !mm.depth {
				return "", errors.New(mm.msg)
			}
			unequal = true
		}
	}
	if !unequal {
		return "", nil
	}
	var parts []string
	for _, m := range models {
		parts = append(parts, fmt.Sprintf("%s %d", m.Name, m.h.layers))
	}
	return "layers: " + strings.Join(parts, ", "), nil
}

// techniques keeps the configured techniques that can run and records the
// others with the reason.
func (s *Set) techniques(cfg config.Config, hasBase bool, sources int, depths string) ([]string, error) {
	var kept []string
	for _, name := range cfg.Merge.Techniques {
		t, ok := merge.Find(name)
		if !ok {
			return nil, fmt.Errorf("merge.techniques: unknown technique %q", name)
		}
		why := s.unusable(t, hasBase, sources, depths)
		if why == "" && t.SubMerge {
			if ps, ok := merge.Find(cfg.Merge.PSMethod); ok {
				if w := s.unusable(ps, hasBase, sources, depths); w != "" {
					why = fmt.Sprintf("its parameter-space merge (merge.ps_method %s) %s", ps.Name, w)
				}
			}
		}
		if why != "" {
			s.Dropped = append(s.Dropped, Dropped{name, why})
			continue
		}
		kept = append(kept, name)
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("no technique of merge.techniques can run on these models: %s", s.droppedText())
	}
	return kept, nil
}

// cmaesTechnique is the technique CMA-ES and ES tune on these models:
// evolution.cmaes_technique, or for "auto" the first of
// config.AutoTechniques that kept holds, else kept's first. A named
// technique the models do not allow is an error that says why and what
// remains.
func (s *Set) cmaesTechnique(cfg config.Config, kept []string) (string, error) {
	want := cfg.Evolution.CMAESTechnique
	if want == config.AutoTechnique {
		for _, a := range config.AutoTechniques() {
			if i := slices.IndexFunc(kept, func(k string) bool { return config.SameTechnique(k, a) }); i >= 0 {
				return kept[i], nil
			}
		}
		return kept[0], nil // techniques errs when nothing is kept
	}
	for _, d := range s.Dropped {
		if config.SameTechnique(d.Name, want) {
			return "", fmt.Errorf("evolution.cmaes_technique %s cannot run on these models: it %s; choose one of %s", d.Name, d.Reason, strings.Join(kept, ", "))
		}
	}
	return want, nil
}

// droppedText lists the techniques left out with their reasons.
func (s *Set) droppedText() string {
	var parts []string
	for _, d := range s.Dropped {
		parts = append(parts, d.Name+" "+d.Reason)
	}
	return strings.Join(parts, "; ")
}

// unusable says why t cannot run ("" when it can), as a phrase that
// follows the technique's name.
func (s *Set) unusable(t merge.Technique, hasBase bool, sources int, depths string) string {
	switch {
	case t.Base == merge.BaseRequired && !hasBase:
		return "needs a base model (" + s.BaseNote + ")"
	case sources < t.MinModels || (t.MaxModels > 1 && sources > t.MaxModels):
		return fmt.Sprintf("merges %s models besides the base; there are %d", t.ModelCount(), sources)
	case depths != "" && (t.Layout == merge.Tensorwise || t.SubMerge):
		return "needs models of equal depth (" + depths + ")"
	}
	return ""
}
