package merge

import (
	"fmt"
	"math"
)

// Helpers shared by the Method implementations: input checks and
// parameter access. Every Merge checks its input and its parameters, so a
// method never computes on a malformed call even if the caller skipped
// validation.

// methodError formats an error with the method and tensor as context.
func methodError(m Method, in *Input, format string, args ...any) error {
	return fmt.Errorf("%s: tensor %s: %s", m.Name(), in.Tensor, fmt.Sprintf(format, args...))
}

// checkInput checks what every method relies on: the number of models, the
// base where the method uses one, equal lengths, and one parameter map per
// model.
func checkInput(m Method, in *Input, out []float32) error {
	lo, hi := m.Models()
	n := len(in.Models)
	switch {
	case n < lo:
		return methodError(m, in, "needs at least %d models besides the base, got %d", lo, n)
	case hi > 0 && n > hi:
		return methodError(m, in, "takes at most %d models besides the base, got %d", hi, n)
	case m.Base() == BaseRequired && in.Base == nil:
		return methodError(m, in, "needs a base model")
	case m.Base() != BaseIgnored && in.Base != nil && len(in.Base) != len(out):
		return methodError(m, in, "base has %d elements, output %d", len(in.Base), len(out))
	case len(in.ModelParams) != n:
		return methodError(m, in, "%d models but %d parameter sets", n, len(in.ModelParams))
	}
	for i, x := range in.Models {
		if len(x) != len(out) {
			return methodError(m, in, "model %d has %d elements, output %d", i, len(x), len(out))
		}
	}
	return nil
}

// tensorRowLen is the length of the tensor's contiguous rows (ggml's ne[0]); a
// tensor without a usable shape is one row.
func tensorRowLen(in *Input, n int) int {
	if len(in.Shape) == 0 || in.Shape[0] == 0 || n%int(in.Shape[0]) != 0 {
		return n
	}
	return int(in.Shape[0])
}

// paramReader reads the resolved parameters of one Merge call, filling in
// defaults for absent ones and checking each value against the method's
// ParamSpec. The first problem is kept in err; later reads return 0.
type paramReader struct {
	m   Method
	in  *Input
	err error
}

func (r *paramReader) read(name string, scope Scope, values map[string]float64, model int) float64 {
	if r.err != nil {
		return 0
	}
	where := ""
	if scope == PerModel {
		where = fmt.Sprintf(" of model %d", model)
	}
	spec, ok := Spec(r.m, name)
	if !ok || spec.Scope != scope {
		r.err = methodError(r.m, r.in, "internal: parameter %q is not a declared %s parameter", name, scopeName(scope))
		return 0
	}
	v, set := values[name]
	switch {
	case !set && spec.Required:
		r.err = methodError(r.m, r.in, "parameter %s%s is required", name, where)
	case !set:
		v = spec.Default
	case math.IsNaN(v) || math.IsInf(v, 0):
		r.err = methodError(r.m, r.in, "parameter %s%s = %g is not a finite number", name, where, v)
	case spec.Bool && v != 0 && v != 1:
		r.err = methodError(r.m, r.in, "parameter %s%s = %g must be true or false", name, where, v)
	case v < spec.Min || v > spec.Max:
		r.err = methodError(r.m, r.in, "parameter %s%s = %g is outside its range [%g, %g]", name, where, v, spec.Min, spec.Max)
	}
	return v
}

// global returns a Global parameter.
func (r *paramReader) global(name string) float64 {
	return r.read(name, Global, r.in.Global, 0)
}

// model returns PerModel parameter name of model i.
func (r *paramReader) model(i int, name string) float64 {
	return r.read(name, PerModel, r.in.ModelParams[i], i)
}

// flag returns a Bool parameter.
func (r *paramReader) flag(name string) bool { return r.global(name) != 0 }

// perModel returns PerModel parameter name of every model.
func (r *paramReader) perModel(name string) []float64 {
	vs := make([]float64, len(r.in.Models))
	for i := range vs {
		vs[i] = r.model(i, name)
	}
	return vs
}

func scopeName(s Scope) string {
	if s == PerModel {
		return "per-model"
	}
	return "global"
}

// Parameter specs used by several methods. They are built by functions so
// that every Params call returns a fresh slice nobody else can modify.

func weightParam(doc string) ParamSpec {
	return ParamSpec{Name: "weight", Scope: PerModel, Default: 1, Min: math.Inf(-1), Max: math.Inf(1),
		Doc: doc + " (mergekit requires it; here it defaults to 1)", Gene: GeneWeight}
}

func boolParam(name string, def bool, doc string) ParamSpec {
	d := 0.0
	if def {
		d = 1
	}
	return ParamSpec{Name: name, Scope: Global, Default: d, Min: 0, Max: 1, Bool: true, Doc: doc}
}

func fractionParam(name string, scope Scope, def float64, doc string) ParamSpec {
	return ParamSpec{Name: name, Scope: scope, Default: def, Min: 0, Max: 1, Doc: doc}
}

// float32s converts weights for the float32 kernels.
func float32s(vs []float64) []float32 {
	out := make([]float32, len(vs))
	for i, v := range vs {
		out[i] = float32(v)
	}
	return out
}
