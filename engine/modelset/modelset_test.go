package modelset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/hub"
	"github.com/evomerge/evomerge/zoo"
)

// spec is a model to write: synth's llama-like layout.
type spec struct {
	layers, dim int
	arch        string
	meta        gguf.Metadata // extra metadata (general.base_model.N.*)
}

// writeModel writes a GGUF with the shape's tensors (zeros: the rules read
// headers only).
func writeModel(t *testing.T, path string, s spec) string {
	t.Helper()
	m := synth.Model{Layers: s.layers, Dim: s.dim, Arch: s.arch, Type: gguf.TypeF32}
	h := m.Header(filepath.Base(path))
	h.Metadata = append(h.Metadata, s.meta...)
	fw, err := gguf.Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Abort()
	for _, ti := range h.Tensors {
		if err := fw.WriteTensor(ti.Name, make([]byte, ti.Bytes())); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

// baseOf is the metadata llama.cpp's converter writes for a fine-tune of id.
func baseOf(ids ...string) gguf.Metadata {
	md := gguf.Metadata{{Key: "general.base_model.count", Value: uint32(len(ids))}}
	for i, id := range ids {
		org, name, _ := strings.Cut(id, "/")
		md = append(md,
			gguf.KV{Key: fmt.Sprintf("general.base_model.%d.name", i), Value: strings.ReplaceAll(name, "-", " ")},
			gguf.KV{Key: fmt.Sprintf("general.base_model.%d.organization", i), Value: org},
			gguf.KV{Key: fmt.Sprintf("general.base_model.%d.repo_url", i), Value: "https://huggingface.co/" + id})
	}
	return md
}

// world is a set of model files and a resolver over them: zoo:NAME are
// the stand-in zoo's models (llama, 6 layers, width 48), hub ids are
// served from hubModels, anything else is a path.
type world struct {
	t        *testing.T
	dir      string
	hub      map[string]string // repository id -> file
	resolved []string          // references resolved, in order
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, dir: t.TempDir(), hub: map[string]string{}}
	for _, name := range zoo.Names() {
		writeModel(t, filepath.Join(w.dir, "zoo-"+name+".gguf"), spec{layers: 6, dim: 48})
	}
	return w
}

func (w *world) model(name string, s spec) string {
	return writeModel(w.t, filepath.Join(w.dir, name+".gguf"), s)
}

func (w *world) resolve(_ context.Context, ref string) (string, error) {
	w.resolved = append(w.resolved, ref)
	if name, ok := zoo.ParseModelRef(ref); ok {
		return filepath.Join(w.dir, "zoo-"+name+".gguf"), nil
	}
	if hub.IsLocalPath(ref) {
		if _, err := os.Stat(ref); err != nil {
			return "", hub.ErrNoSuchFile
		}
		return ref, nil
	}
	r, err := hub.ParseRef(ref)
	if err != nil {
		return "", err
	}
	if p, ok := w.hub[r.Repo]; ok {
		return p, nil
	}
	return "", fmt.Errorf("%s: %w", r.Repo, hub.ErrNotFound)
}

// userConfig is the zoo's default with the user's models in the first
// places, as --model1..3 make it.
func userConfig(models ...string) config.Config {
	cfg := config.Default()
	for i, p := range models {
		cfg.Models[i] = config.Model{Name: NameFor(p), Path: p}
	}
	return cfg
}

func names(ds []Dropped) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

func reason(ds []Dropped, name string) string {
	for _, d := range ds {
		if d.Name == name {
			return d.Reason
		}
	}
	return ""
}

func mustPrepare(t *testing.T, cfg config.Config, w *world) *Set {
	t.Helper()
	s, err := Prepare(context.Background(), cfg, w.resolve)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestZooDefaults: without user models the zoo runs as configured, with
// the zoo's coherence prompts.
func TestZooDefaults(t *testing.T) {
	w := newWorld(t)
	s := mustPrepare(t, config.Default(), w)
	if s.Config.Merge.Base != zoo.Base || len(s.LeftOut) != 0 || len(s.Dropped) != 0 || len(s.Models) != 4 || !s.Models[3].Base {
		t.Fatalf("%+v", s)
	}
	if !slices.Equal(s.Config.Evaluation.CoherencePrompts, zoo.CoherencePrompts()) {
		t.Errorf("prompts %q, want the zoo's", s.Config.Evaluation.CoherencePrompts)
	}
	if !slices.Equal(s.Config.Merge.Techniques, config.Default().Merge.Techniques) {
		t.Errorf("techniques %v", s.Config.Merge.Techniques)
	}
}

// TestUserModelsLeaveTheZooOut is the first case: three fine-tunes
// of a small model of another shape. The zoo's models (its base included)
// do not fit them and are left out; with no base, the techniques that need
// one are dropped, each with the reason.
func TestUserModelsLeaveTheZooOut(t *testing.T) {
	w := newWorld(t)
	var ps []string
	for _, n := range []string{"x", "y", "z"} {
		ps = append(ps, w.model(n, spec{layers: 2, dim: 32}))
	}
	s := mustPrepare(t, userConfig(ps...), w)
	if got := names(s.LeftOut); !slices.Equal(got, []string{zoo.Base}) {
		t.Errorf("left out %v, want the zoo's base", got)
	}
	if r := reason(s.LeftOut, zoo.Base); !strings.Contains(r, "tensor token_embd.weight is [48 40] in model stories15M and [32 40] in model x") {
		t.Errorf("reason %q", r)
	}
	if s.Config.Merge.Base != "" || !strings.HasPrefix(s.BaseNote, "no base") {
		t.Errorf("base %q: %s", s.Config.Merge.Base, s.BaseNote)
	}
	if got := s.Config.Merge.Techniques; !slices.Equal(got, []string{"linear", "frankenmerge", "dfs"}) {
		t.Errorf("kept %v", got)
	}
	if got := names(s.Dropped); !slices.Equal(got, []string{"slerp", "ties", "dare_ties", "task_arithmetic", "ps_dfs"}) {
		t.Errorf("dropped %v", got)
	}
	if r := reason(s.Dropped, "ties"); !strings.HasPrefix(r, "needs a base model (no base: none was given") {
		t.Errorf("ties: %q", r)
	}
	if len(s.Config.Models) != 3 || slices.ContainsFunc(s.Config.Models, func(m config.Model) bool { return m.Fill }) {
		t.Errorf("models %+v", s.Config.Models)
	}
	if !slices.Equal(s.Config.Evaluation.CoherencePrompts, eval.DefaultCoherencePrompts()) {
		t.Errorf("prompts %q, want the generic ones", s.Config.Evaluation.CoherencePrompts)
	}
}

// TestZooFillsWhatFits: one user model that fits the zoo keeps the zoo's
// other models and base; one that does not is an error saying what to give.
func TestZooFillsWhatFits(t *testing.T) {
	w := newWorld(t)
	fits := w.model("fits", spec{layers: 6, dim: 48})
	s := mustPrepare(t, userConfig(fits), w)
	if len(s.LeftOut) != 0 || s.Config.Merge.Base != zoo.Base || len(s.Config.Models) != 4 || s.Config.Models[0].Name != "fits" {
		t.Errorf("%+v", s.Config.Models)
	}

	other := w.model("other", spec{layers: 2, dim: 32, arch: "qwen2"})
	_, err := Prepare(context.Background(), userConfig(other), w.resolve)
	want := "model other (qwen2, 2 layers, width 32) cannot be merged with the zoo's models (model stories15M is llama and model other is qwen2: models of different architectures cannot be merged): give the models to merge it with, --model2 (and --model3) and --base"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// TestBaseDetected: sources that name one base in their metadata get it as
// the base — fetched from the hub, or one of the run's models when it is
// that repository.
func TestBaseDetected(t *testing.T) {
	w := newWorld(t)
	w.hub["acme/tiny-base"] = w.model("tiny-base", spec{layers: 2, dim: 32})
	var ps []string
	for _, n := range []string{"a", "b", "c"} {
		ps = append(ps, w.model(n, spec{layers: 2, dim: 32, meta: baseOf("acme/tiny-base")}))
	}
	s := mustPrepare(t, userConfig(ps...), w)
	if s.Config.Merge.Base != "tiny-base" || !strings.Contains(s.BaseNote, "base acme/tiny-base: every model names it") {
		t.Fatalf("base %q: %s", s.Config.Merge.Base, s.BaseNote)
	}
	last := s.Config.Models[len(s.Config.Models)-1]
	if last.HF != "acme/tiny-base" || len(s.Dropped) != 0 || !s.Models[3].Base {
		t.Errorf("base entry %+v, dropped %v", last, s.Dropped)
	}

	// Given as one of the models, by its id.
	cfg := userConfig(ps[0], ps[1])
	cfg.Models[2] = config.Model{Name: "mybase", HF: "hf.co/acme/tiny-base"}
	s = mustPrepare(t, cfg, w)
	if s.Config.Merge.Base != "mybase" || len(s.Config.Models) != 3 || !strings.Contains(s.BaseNote, "base mybase: model mybase is acme/tiny-base, which the other models name as their base") {
		t.Errorf("base %q (%s), models %+v", s.Config.Merge.Base, s.BaseNote, s.Config.Models)
	}
}

// TestBaseNotDetected: different bases, or a base the hub does not have,
// leave the run without one, and the note says why.
func TestBaseNotDetected(t *testing.T) {
	w := newWorld(t)
	a := w.model("a", spec{layers: 2, dim: 32, meta: baseOf("acme/one")})
	b := w.model("b", spec{layers: 2, dim: 32, meta: baseOf("acme/two")})
	s := mustPrepare(t, userConfig(a, b), w)
	if s.Config.Merge.Base != "" || !strings.Contains(s.BaseNote, "do not name one common base model (a: acme/one; b: acme/two)") {
		t.Errorf("base %q: %s", s.Config.Merge.Base, s.BaseNote)
	}
	c := w.model("c", spec{layers: 2, dim: 32, meta: baseOf("acme/one")})
	s = mustPrepare(t, userConfig(a, c), w)
	if s.Config.Merge.Base != "" || !strings.Contains(s.BaseNote, "every model names acme/one as its base (general.base_model), but it cannot be used: acme/one: not found on the hub") {
		t.Errorf("base %q: %s", s.Config.Merge.Base, s.BaseNote)
	}
}

// TestDifferentDepths: parameter-space techniques need equal depths and
// are dropped; the data-flow ones stack layers of any depth.
func TestDifferentDepths(t *testing.T) {
	w := newWorld(t)
	cfg := userConfig(w.model("deep", spec{layers: 4, dim: 32}), w.model("shallow", spec{layers: 2, dim: 32}), w.model("base", spec{layers: 4, dim: 32}))
	cfg.Merge.Base = "base"
	s := mustPrepare(t, cfg, w)
	if got := s.Config.Merge.Techniques; !slices.Equal(got, []string{"frankenmerge", "dfs"}) {
		t.Errorf("kept %v", got)
	}
	if r := reason(s.Dropped, "ties"); r != "needs models of equal depth (layers: deep 4, shallow 2, base 4)" {
		t.Errorf("ties: %q", r)
	}
	if r := reason(s.Dropped, "ps_dfs"); !strings.Contains(r, "needs models of equal depth") {
		t.Errorf("ps_dfs: %q", r)
	}
	if d := s.Depths(); d[s.Models[0].Path] != 4 || d[s.Models[1].Path] != 2 || s.Layers() != 4 {
		t.Errorf("depths %v", d)
	}
}

// TestIncompatibleModels: one line names what differs.
func TestIncompatibleModels(t *testing.T) {
	w := newWorld(t)
	a := w.model("a", spec{layers: 2, dim: 32})
	for _, tc := range []struct {
		other spec
		want  string
	}{
		{spec{layers: 2, dim: 64}, "tensor token_embd.weight is [64 40] in model b and [32 40] in model a: the models differ in shape"},
		{spec{layers: 2, dim: 32, arch: "qwen2"}, "model b is qwen2 and model a is llama: models of different architectures cannot be merged"},
	} {
		b := w.model("b", tc.other)
		_, err := Prepare(context.Background(), userConfig(a, b), w.resolve)
		if err == nil || err.Error() != tc.want {
			t.Errorf("err = %v\nwant %s", err, tc.want)
		}
	}
	_, err := Prepare(context.Background(), userConfig(a, filepath.Join(w.dir, "missing.gguf")), w.resolve)
	if err == nil || err.Error() != "model missing ("+filepath.Join(w.dir, "missing.gguf")+"): no such file" {
		t.Errorf("missing: %v", err)
	}
	_, err = Prepare(context.Background(), userConfig(a), w.resolve)
	if err == nil || !strings.Contains(err.Error(), "model a (llama, 2 layers, width 32) cannot be merged with the zoo's models") {
		t.Errorf("one model: %v", err)
	}
	cfg := userConfig(a)
	cfg.Models = cfg.Models[:1]
	cfg.Merge.Base = ""
	_, err = Prepare(context.Background(), cfg, w.resolve)
	if err == nil || err.Error() != "model a alone, without a base, is nothing to merge: give a second model, or its base model (--base, merge.base)" {
		t.Errorf("alone: %v", err)
	}
}

// TestTechniqueRules: what a technique needs — a base, a number of models
// besides it — follows its registry declaration, for merge.techniques and
// for ps_dfs's merge.ps_method; nothing left to run is an error listing the
// reasons, and so is a CMA-ES technique that was dropped.
func TestTechniqueRules(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name    string
		change  func(c *config.Config)
		dropped string // "name: reason"
		err     string
		tuned   string // evolution.cmaes_technique after Prepare ("": unchecked)
	}{
		{name: "base needed", change: func(c *config.Config) { c.Merge.Base = ""; c.Merge.Techniques = []string{"sce", "linear"} },
			dropped: "sce: needs a base model (no base: none was given"},
		{name: "exactly two", change: func(c *config.Config) { c.Merge.Techniques = []string{"nuslerp", "linear"} },
			dropped: "nuslerp: merges exactly 2 models besides the base; there are 3"},
		{name: "at least two", change: func(c *config.Config) { c.Models = c.Models[2:]; c.Merge.Techniques = []string{"model_stock", "slerp"} },
			dropped: "model_stock: merges at least 2 models besides the base; there are 1"},
		{name: "ps_method rules apply to ps_dfs", change: func(c *config.Config) { c.Merge.PSMethod = "nuslerp"; c.Merge.Techniques = []string{"ps_dfs", "dfs"} },
			dropped: "ps_dfs: its parameter-space merge (merge.ps_method nuslerp) merges exactly 2 models"},
		{name: "ps_method unused", change: func(c *config.Config) { c.Merge.PSMethod = "nuslerp"; c.Merge.Techniques = []string{"ties"} }},
		{name: "slerp picks one of many", change: func(c *config.Config) { c.Merge.Techniques = []string{"slerp"} }},
		{name: "nothing left", change: func(c *config.Config) { c.Merge.Base = ""; c.Merge.Techniques = []string{"ties", "nuslerp"} },
			err: "no technique of merge.techniques can run on these models: ties needs a base model (no base: none was given (--base, merge.base) and the models' metadata (general.base_model) names none); nuslerp merges exactly 2 models besides the base; there are 4"},
		{name: "cmaes technique dropped", change: func(c *config.Config) {
			c.Merge.Base = ""
			c.Evolution.Optimizer, c.Merge.Techniques, c.Evolution.CMAESTechnique = "cmaes", []string{"dare", "linear"}, "dare_ties"
		}, err: "evolution.cmaes_technique dare cannot run on these models: it needs a base model"},
		{name: "es technique dropped", change: func(c *config.Config) {
			c.Merge.Base = ""
			c.Evolution.Optimizer, c.Merge.Techniques, c.Evolution.CMAESTechnique = "es", []string{"ties", "linear"}, "ties"
		}, err: "evolution.cmaes_technique ties cannot run on these models: it needs a base model"},
		{name: "auto with a base is task arithmetic", change: func(c *config.Config) { c.Evolution.Optimizer = "es" }, tuned: "task_arithmetic"},
		{name: "auto without a base is linear", change: func(c *config.Config) {
			c.Merge.Base = ""
			c.Evolution.Optimizer, c.Merge.Techniques = "cmaes", []string{"task_arithmetic", "linear"}
		}, dropped: "task_arithmetic: needs a base model", tuned: "linear"},
		{name: "auto with neither is the first kept", change: func(c *config.Config) {
			c.Merge.Base = ""
			c.Evolution.Optimizer, c.Merge.Techniques = "es", []string{"task_arithmetic", "multislerp", "dfs"}
		}, dropped: "task_arithmetic: needs a base model", tuned: "multislerp"},
		{name: "a named technique stays", change: func(c *config.Config) {
			c.Evolution.Optimizer, c.Evolution.CMAESTechnique = "es", "dare"
		}, tuned: "dare"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			tc.change(&c)
			s, err := Prepare(context.Background(), c, w.resolve)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			var got []string
			for _, d := range s.Dropped {
				got = append(got, d.Name+": "+d.Reason)
			}
			if tc.dropped == "" && len(got) > 0 || tc.dropped != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.dropped)) {
				t.Errorf("dropped %q, want %q", got, tc.dropped)
			}
			if tc.tuned != "" && s.Config.Evolution.CMAESTechnique != tc.tuned {
				t.Errorf("cmaes_technique %q, want %q", s.Config.Evolution.CMAESTechnique, tc.tuned)
			}
		})
	}
}

// TestFillerMissing: a zoo model that is not installed is left out when
// the user gave models, and an error naming where it was looked for when
// the run is the zoo's.
func TestFillerMissing(t *testing.T) {
	w := newWorld(t)
	var ps []string
	for _, n := range []string{"a", "b"} {
		ps = append(ps, w.model(n, spec{layers: 2, dim: 32}))
	}
	if err := os.Remove(filepath.Join(w.dir, "zoo-sotu.gguf")); err != nil {
		t.Fatal(err)
	}
	missing := func(ctx context.Context, ref string) (string, error) {
		if ref == zoo.ModelRef("sotu") {
			return "", errors.New("zoo model sotu not found")
		}
		return w.resolve(ctx, ref)
	}
	s, err := Prepare(context.Background(), userConfig(ps...), missing)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(s.LeftOut); !slices.Equal(got, []string{"sotu", zoo.Base}) || reason(s.LeftOut, "sotu") != "zoo model sotu not found" {
		t.Errorf("left out %v", s.LeftOut)
	}
	if _, err := Prepare(context.Background(), config.Default(), missing); err == nil || err.Error() != "model sotu: zoo model sotu not found" {
		t.Errorf("zoo run: %v", err)
	}
}

func TestNameFor(t *testing.T) {
	for _, tc := range []struct{ ref, want string }{
		{"zoo:bible", "bible"},
		{"./models/My Model.GGUF", "My-Model"},
		{"/abs/x.gguf", "x"},
		{"acme/tiny-GGUF", "tiny-GGUF"},
		{"acme/tiny-GGUF:Q8_0", "tiny-GGUF-Q8_0"},
		{"acme/tiny-GGUF/sub/tiny-f16.gguf", "tiny-f16"},
		{"https://huggingface.co/acme/tiny/blob/main/m-Q4_K_M.gguf", "m-Q4_K_M"},
		{"gpt2", "gpt2"},
		{"hf.co/acme/qwen:Q4_K_M", "qwen-Q4_K_M"},
	} {
		if got := NameFor(tc.ref); got != tc.want {
			t.Errorf("NameFor(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
	taken := map[string]bool{"x": true, "x-2": true}
	if e := Entry("/a/x.gguf", func(n string) bool { return taken[n] }); e.Name != "x-3" || e.Path != "/a/x.gguf" {
		t.Errorf("Entry = %+v", e)
	}
	if e := Entry("acme/m", nil); e.HF != "acme/m" || e.Path != "" {
		t.Errorf("Entry = %+v", e)
	}
}
