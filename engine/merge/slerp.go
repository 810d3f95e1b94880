package merge

import "github.com/evomerge/evomerge/kernels"

// slerp interpolates spherically between the base and one other model.
type slerp struct{}

func init() { mustRegister(Technique{Order: 20, Method: slerp{}}) }

func (slerp) Name() string { return "slerp" }

func (slerp) Doc() string {
	return "spherical interpolation from the base (t=0) to the other model (t=1)"
}

func (slerp) Params() []ParamSpec {
	return []ParamSpec{{Name: "t", Scope: Global, Min: 0, Max: 1, Required: true,
		Doc: "interpolation factor: 0 is the base, 1 the other model", Gene: GeneT}}
}

func (slerp) Base() BaseUse { return BaseRequired }

func (slerp) Models() (min, max int) { return 1, 1 }

// Merge slerps the flattened tensors; see kernels.SlerpCoefficients.
func (m slerp) Merge(in *Input, out []float32) error {
	if err := checkInput(m, in, out); err != nil {
		return err
	}
	r := paramReader{m: m, in: in}
	t := r.global("t")
	if r.err != nil {
		return r.err
	}
	kernels.Slerp(out, in.Base, in.Models[0], t)
	return nil
}
