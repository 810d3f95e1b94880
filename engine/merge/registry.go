package merge

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// The registry is the one list of techniques. Everything else that names
// techniques is derived from it: recipe planning, the configuration's
// validation (merge.techniques, merge.ps_method), the evolution's genome
// (which genes a technique reads and how they decode into a recipe), the
// configuration forms, the command line's help and docs/methods.md.
//
// Adding a technique is adding one file that declares a Technique and
// registers it in an init function (for a tensor-by-tensor method, its
// Method and the listing fields; see linear.go or sce.go). The model is
// mergekit's merge_methods registry, with the metadata that mergekit keeps
// implicit (parameter ranges, scopes, how the evolution searches each
// parameter) declared explicitly.
//
// The package's registry is built by init functions and is not changed
// afterwards, except by tests: a test may Register a throwaway technique
// and must call the returned remove function in t.Cleanup, and must not run
// in parallel with tests that list the techniques. Reads and registration
// are safe for concurrent use.

// Layout says how a technique builds its output: in parameter space (same
// shapes, tensor by tensor) or in data-flow space (a new layer structure).
type Layout int

const (
	// Tensorwise techniques merge every tensor of the output from the same
	// tensor of each model, so the models need equal shapes. They implement
	// Method.
	Tensorwise Layout = iota
	// Slices techniques stack layer ranges of the models, so the output may
	// have more or fewer layers than any of them (passthrough).
	Slices
	// LayerPath techniques build the output as a path through the models'
	// layers, each step with a scale (dfs).
	LayerPath
)

func (l Layout) String() string {
	switch l {
	case Tensorwise:
		return "parameter space"
	case Slices:
		return "data flow: layer slices"
	case LayerPath:
		return "data flow: layer path"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// Gene says how the evolution searches a parameter: which genes set it and
// which range of the configuration (merge.ranges) they map onto. Every
// genome holds all genes (engine/evolve's Space), so parameters of the same
// kind share genes across techniques and keep their meaning when a child
// switches technique.
type Gene int

const (
	// NotEvolved parameters keep their default.
	NotEvolved Gene = iota
	// GeneWeight is a per-model parameter with one gene per model and layer
	// group, mapped onto merge.ranges.weight.
	GeneWeight
	// GeneTaskWeight is a per-model weight that scales a task vector as it
	// is — the method does not divide by the weights' sum — with the same
	// genes as GeneWeight (one per model and layer group), mapped onto
	// merge.ranges.task_weight in units of 1/M for M merged models: 1 is
	// the uniform average's share, so the middle of the default range
	// [0, 2] is the uniform average whatever the number of models.
	GeneTaskWeight
	// GeneDensity is a per-model parameter with one gene per model and layer
	// group, mapped onto merge.ranges.density.
	GeneDensity
	// GeneT is a global parameter with one gene per layer group, shared by
	// the models, mapped onto merge.ranges.t.
	GeneT
	// GeneLambda is a global parameter with one gene per layer group,
	// shared by the models, mapped onto merge.ranges.lambda.
	GeneLambda
)

// Range is the merge.ranges key the gene maps onto ("" for NotEvolved).
func (g Gene) Range() string {
	switch g {
	case GeneWeight:
		return "weight"
	case GeneTaskWeight:
		return "task_weight"
	case GeneDensity:
		return "density"
	case GeneT:
		return "t"
	case GeneLambda:
		return "lambda"
	}
	return ""
}

// String describes the gene for help and docs.
func (g Gene) String() string {
	switch g {
	case NotEvolved:
		return "not evolved"
	case GeneWeight, GeneDensity:
		return "per model and layer group, merge.ranges." + g.Range()
	case GeneTaskWeight:
		return "per model and layer group, merge.ranges.task_weight (× 1/models)"
	case GeneT, GeneLambda:
		return "per layer group, merge.ranges." + g.Range()
	}
	return fmt.Sprintf("Gene(%d)", int(g))
}

// scope is the only scope a gene kind can set.
func (g Gene) scope() Scope {
	if g == GeneWeight || g == GeneTaskWeight || g == GeneDensity {
		return PerModel
	}
	return Global
}

// Technique declares one technique: everything the rest of the program
// knows about it.
type Technique struct {
	// Name is the spelling in recipes and configurations, as in mergekit.
	Name string
	// Aliases are other accepted spellings ("dare" for dare_ties).
	Aliases []string
	// Doc is a one-line description.
	Doc string
	// Order places the technique in lists (help, forms, docs): lower
	// first, equal orders by name.
	Order int
	// Layout is how the output is built.
	Layout Layout
	// Params are the parameters, with defaults, ranges and genes.
	Params []ParamSpec
	// Base says whether a base model is needed, used when given, or ignored.
	Base BaseUse
	// MinModels and MaxModels bound the number of models besides the base
	// (MaxModels 0: no limit).
	MinModels, MaxModels int
	// SubMerge: the layer path may also draw on a parameter-space merge of
	// the sources (ps_dfs; the configuration's merge.ps_method).
	SubMerge bool
	// RecipeOnly techniques are not searched by the evolution.
	RecipeOnly bool
	// Writes, for a technique of the evolution only, is the technique its
	// recipes use (frankenmerge's candidates are passthrough recipes).
	// Recipes cannot name such a technique.
	Writes string
	// Method merges one tensor (Tensorwise techniques only). When it is
	// set, Name, Doc, Params, Base and the model bounds are taken from it
	// (a Name given as well must agree).
	Method Method
}

// Evolvable reports whether the evolution can search the technique.
func (t Technique) Evolvable() bool { return !t.RecipeOnly }

// InRecipes reports whether recipes can name the technique.
func (t Technique) InRecipes() bool { return t.Writes == "" }

// RecipeMethod is the technique the evolution's recipes of t name.
func (t Technique) RecipeMethod() string { return cmp.Or(t.Writes, t.Name) }

// Genes lists the gene kinds t's parameters use, in the order of the
// Gene constants.
func (t Technique) Genes() []Gene {
	var out []Gene
	for _, p := range t.Params {
		if p.Gene != NotEvolved && !slices.Contains(out, p.Gene) {
			out = append(out, p.Gene)
		}
	}
	slices.Sort(out)
	return out
}

// Param returns the parameter that the gene kind g sets, if any.
func (t Technique) Param(g Gene) (ParamSpec, bool) {
	i := slices.IndexFunc(t.Params, func(p ParamSpec) bool { return p.Gene == g })
	if g == NotEvolved || i < 0 {
		return ParamSpec{}, false
	}
	return t.Params[i], true
}

// Spellings are the name and the aliases.
func (t Technique) Spellings() []string { return append([]string{t.Name}, t.Aliases...) }

// ModelCount describes the model bounds ("exactly 2", "at least 1", "2 to 4").
func (t Technique) ModelCount() string {
	switch {
	case t.MaxModels == t.MinModels:
		return fmt.Sprintf("exactly %d", t.MinModels)
	case t.MaxModels == 0:
		return fmt.Sprintf("at least %d", t.MinModels)
	}
	return fmt.Sprintf("%d to %d", t.MinModels, t.MaxModels)
}

func (t Technique) clone() Technique {
	t.Aliases = slices.Clone(t.Aliases)
	t.Params = slices.Clone(t.Params)
	return t
}

// Registry holds techniques by name and alias.
type Registry struct {
	mu    sync.RWMutex
	list  []*Technique          // by Order, then Name
	names map[string]*Technique // names and aliases
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{names: map[string]*Technique{}} }

// registry is the package's registry, filled by the init functions of the
// technique files.
var registry = NewRegistry()

var techniqueName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Register checks t's declaration and adds it. The returned function
// removes it again (for tests; see the top of this file).
func (r *Registry) Register(t Technique) (remove func(), err error) {
	t = t.clone()
	if t.Method != nil {
		m := t.Method
		if t.Name != "" && t.Name != m.Name() {
			return nil, fmt.Errorf("register %q: its Method is named %q", t.Name, m.Name())
		}
		t.Name, t.Doc, t.Params, t.Base = m.Name(), m.Doc(), m.Params(), m.Base()
		t.MinModels, t.MaxModels = m.Models()
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("register %q: %w", t.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range t.Spellings() {
		if _, dup := r.names[s]; dup {
			return nil, fmt.Errorf("register %q: %q is already registered", t.Name, s)
		}
	}
	p := &t
	for _, s := range t.Spellings() {
		r.names[s] = p
	}
	i, _ := slices.BinarySearchFunc(r.list, p, compareTechniques)
	r.list = slices.Insert(r.list, i, p)
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, s := range p.Spellings() {
			if r.names[s] == p {
				delete(r.names, s)
			}
		}
		r.list = slices.DeleteFunc(r.list, func(q *Technique) bool { return q == p })
	}, nil
}

func compareTechniques(a, b *Technique) int {
	return cmp.Or(cmp.Compare(a.Order, b.Order), strings.Compare(a.Name, b.Name))
}

// check validates a declaration: what every consumer relies on.
func (t *Technique) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, s := range t.Spellings() {
		if !techniqueName.MatchString(s) {
			bad("name %q: use lower-case letters, digits and _", s)
		}
	}
	if t.Doc == "" || strings.ContainsAny(t.Doc, "\n\r") {
		bad("Doc must be one non-empty line")
	}
	if (t.Layout == Tensorwise) != (t.Method != nil) {
		bad("a %s technique needs a Method, the others none", Tensorwise)
	}
	if t.MinModels < 1 || (t.MaxModels != 0 && t.MaxModels < t.MinModels) {
		bad("model bounds %d, %d", t.MinModels, t.MaxModels)
	}
	if t.SubMerge && t.Layout != LayerPath {
		bad("SubMerge needs the %s layout", LayerPath)
	}
	if t.RecipeOnly && t.Writes != "" {
		bad("RecipeOnly and Writes exclude each other")
	}
	genes := map[Gene]string{}
	names := map[string]bool{}
	for _, p := range t.Params {
		switch {
		case names[p.Name]:
			bad("parameter %s listed twice", p.Name)
		case p.Doc == "":
			bad("parameter %s has no Doc", p.Name)
		case math.IsNaN(p.Min) || math.IsNaN(p.Max) || p.Min > p.Max:
			bad("parameter %s: range [%g, %g]", p.Name, p.Min, p.Max)
		case !p.Required && (p.Default < p.Min || p.Default > p.Max):
			bad("parameter %s: default %g outside [%g, %g]", p.Name, p.Default, p.Min, p.Max)
		case p.Gene != NotEvolved && p.Bool:
			bad("parameter %s: a boolean is not evolved", p.Name)
		case p.Gene != NotEvolved && p.Gene.scope() != p.Scope:
			bad("parameter %s: the %s genes set a %s parameter, not a %s one", p.Name, p.Gene.Range(), scopeName(p.Gene.scope()), scopeName(p.Scope))
		case p.Gene != NotEvolved && genes[p.Gene] != "":
			bad("parameters %s and %s both use the %s genes", genes[p.Gene], p.Name, p.Gene.Range())
		case p.Required && p.Gene == NotEvolved && !t.RecipeOnly:
			bad("required parameter %s is not evolved, so the evolution cannot set it (evolve it or mark the technique RecipeOnly)", p.Name)
		}
		names[p.Name] = true
		if p.Gene != NotEvolved {
			genes[p.Gene] = p.Name
		}
	}
	return errors.Join(errs...)
}

// Find returns the technique registered under name or alias.
func (r *Registry) Find(name string) (Technique, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.names[name]
	if !ok {
		return Technique{}, false
	}
	return t.clone(), true
}

// Techniques lists every technique, in order.
func (r *Registry) Techniques() []Technique {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Technique, len(r.list))
	for i, t := range r.list {
		out[i] = t.clone()
	}
	return out
}

// Lookup returns the Method of the Tensorwise technique registered under
// name or alias.
func (r *Registry) Lookup(name string) (Method, bool) {
	t, ok := r.Find(name)
	if !ok || t.Method == nil {
		return nil, false
	}
	return t.Method, true
}

// mustRegister registers in the package's registry; for init functions,
// where a bad declaration is a programming error.
func mustRegister(t Technique) {
	if _, err := registry.Register(t); err != nil {
		panic(err)
	}
}

// Register adds a technique to the package's registry; see
// Registry.Register. Techniques of this package register themselves; this
// is for tests and for programs that bring their own.
func Register(t Technique) (remove func(), err error) { return registry.Register(t) }

// Find returns the technique registered under name or alias.
func Find(name string) (Technique, bool) { return registry.Find(name) }

// Techniques lists every registered technique, in order.
func Techniques() []Technique { return registry.Techniques() }

// Lookup returns the Method registered under name or alias.
func Lookup(name string) (Method, bool) { return registry.Lookup(name) }

// Methods lists the names of the Tensorwise techniques, sorted.
func Methods() []string {
	var names []string
	for _, t := range Techniques() {
		if t.Method != nil {
			names = append(names, t.Name)
		}
	}
	slices.Sort(names)
	return names
}

// RecipeMethods lists the names recipes can use, in order.
func RecipeMethods() []string {
	var names []string
	for _, t := range Techniques() {
		if t.InRecipes() {
			names = append(names, t.Name)
		}
	}
	return names
}
