package merge

import "slices"

// A Method merges one tensor at a time: the computation of a Tensorwise
// technique. Each method lives in its own file and registers itself, with
// its listing (order, aliases), in an init function (see registry.go);
// adding a method is adding a file. The data-flow techniques (passthrough
// slices, dfs layer paths) are registered too but planned by plan.go and
// dfs.go, without this interface.
type Method interface {
	// Name is the recipe spelling, as in mergekit ("ties", "slerp", ...).
	Name() string
	// Doc is a one-line description for help output.
	Doc() string
	// Params lists the parameters the method reads, with defaults and ranges.
	Params() []ParamSpec
	// Base says whether the method needs, accepts or ignores a base model.
	Base() BaseUse
	// Models is the allowed number of non-base models (max 0 = no limit).
	Models() (min, max int)
	// Merge computes one output tensor into out (len = elements of the
	// tensor), writing every element: out may be a recycled buffer holding
	// stale values. It must not retain the input slices.
	Merge(in *Input, out []float32) error
}

// BaseUse says how a method treats base_model.
type BaseUse int

const (
	BaseIgnored  BaseUse = iota // a base, if given, is merged like any model
	BaseOptional                // used when given (nuslerp)
	BaseRequired                // task vectors are taken against it
)

// Scope says where a parameter may be set.
type Scope int

const (
	Global   Scope = iota // recipe or slice level only (t, lambda, normalize)
	PerModel              // may differ per model (weight, density)
)

// ParamSpec documents and validates one parameter.
type ParamSpec struct {
	Name     string
	Scope    Scope
	Default  float64
	Min, Max float64 // inclusive valid range
	Bool     bool    // stored as 0/1; recipes write true/false
	Required bool    // no default: the recipe must set it
	Doc      string
	// Gene is how the evolution searches the parameter (NotEvolved: it
	// keeps its default).
	Gene Gene
}

// Input is everything a method sees for one tensor. Parameters are already
// resolved for this tensor (per-model > slice > global, gradients and
// filters applied, defaults filled in).
type Input struct {
	Tensor string   // GGUF tensor name, e.g. "blk.3.attn_q.weight"
	Shape  []uint64 // ggml order: Shape[0] is the row length
	Base   []float32
	Models [][]float32
	// Global holds Global-scope parameters; ModelParams[i] the PerModel
	// parameters of Models[i].
	Global      map[string]float64
	ModelParams []map[string]float64
	// Seed is derived from the recipe seed and the tensor name, so random
	// methods (DARE) are reproducible and independent across tensors.
	Seed uint64

	// scratch lends the executor's recycled buffers to temp; temps are the
	// ones lent, handed back after Merge returns.
	scratch *scratch[float32]
	temps   [][]float32
}

// temp returns a work buffer of n elements with unspecified contents that
// lives until Merge returns: recycled during an execution, allocated
// otherwise. Methods take their tensor-sized work space from here.
func (in *Input) temp(n int) []float32 {
	if in.scratch == nil {
		return make([]float32, n)
	}
	b := in.scratch.get(n)
	in.temps = append(in.temps, b)
	return b
}

// Rows is the number of rows of the tensor (1 for vectors).
func (in *Input) Rows() int {
	if len(in.Shape) == 0 || in.Shape[0] == 0 {
		return 1
	}
	n := uint64(1)
	for _, d := range in.Shape {
		n *= d
	}
	return int(n / in.Shape[0])
}

// ModelParam returns parameter name of model i.
func (in *Input) ModelParam(i int, name string) float64 { return in.ModelParams[i][name] }

// Spec returns the named parameter's spec for method m.
func Spec(m Method, name string) (ParamSpec, bool) {
	ps := m.Params()
	i := slices.IndexFunc(ps, func(p ParamSpec) bool { return p.Name == name })
	if i < 0 {
		return ParamSpec{}, false
	}
	return ps[i], true
}
