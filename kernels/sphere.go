package kernels

import "math"

// Spherical means of several flattened tensors v_1..v_N. Every quantity
// these algorithms compute is a linear combination of the unit vectors
// u_i = v_i/‖v_i‖, and every inner product they need is an entry of the
// Gram matrix G_ik = v_i·v_k. So they run on G alone, in N-dimensional
// coefficient space, and return coefficients a with result = Σ_i a_i·v_i:
// one Gram pass and one weighted-sum pass over the tensors, however many
// iterations the mean takes.

// quadForm returns cᵀGc for the n×n matrix g.
func quadForm(g []float64, c []float64) float64 {
	n := len(c)
	var s float64
	for i := range n {
		var row float64
		for k := range n {
			row += g[i*n+k] * c[k]
		}
		s += c[i] * row
	}
	return s
}

// MultiSlerpCoefficients computes mergekit's multislerp (barycentric
// interpolation on the hypersphere) of vectors with Gram matrix g and
// weights w (normalised by the caller when it normalises):
//
//	n_i = ‖v_i‖, u_i = v_i/(n_i + ε), m = Σ w_i u_i, μ = ‖m‖
//	T = Σ w_i (u_i − (u_i·m̂) m̂), with m̂ = m/μ
//	result = (Σ w_i n_i) · (cos(‖T‖+ε)·m̂ + sin(‖T‖+ε)/(‖T‖+ε)·T)
//
// T is identically zero: Σ w_i (u_i·m̂) = m·m̂ = μ, so T = m − μ·m̂ = 0 (in
// mergekit it is float32 rounding noise). Hence
//
//	result = (Σ w_i n_i)·cos(ε)/μ · Σ_i w_i/(n_i + ε)·v_i,
//
// which is what the coefficients a_i express. ok is false when μ < ε (the
// weighted unit vectors cancel); mergekit then falls back to Σ w_i v_i for
// two vectors and fails for more.
func MultiSlerpCoefficients(g []float64, w []float64, eps float64) (a []float64, ok bool) {
	n := len(w)
	c := make([]float64, n)
	var scale float64
	for i := range n {
		norm := math.Sqrt(g[i*n+i])
		c[i] = w[i] / (norm + eps)
		scale += w[i] * norm
	}
	mu := math.Sqrt(max(quadForm(g, c), 0))
	if !(mu >= eps) {
		return nil, false
	}
	f := scale * math.Cos(eps) / mu
	for i := range c {
		c[i] *= f
	}
	return c, true
}

// KarcherCoefficients computes mergekit's karcher merge, the Karcher
// (Riemannian) mean on the unit sphere of the directions of N vectors with
// Gram matrix g, with equal weights α_i = 1/N, scaled by the mean norm:
//
//	n_i = ‖v_i‖; V = {i : n_i > tol}; α'_i = 1/|V| on V
//	μ = Σ_V α'_i u_i, normalised (u_first of V when ‖μ‖ < tol)
//	repeat maxIter times:
//	  T = Σ_V α'_i θ_i/sin θ_i · (u_i − cos θ_i·μ), cos θ_i = clamp(μ·u_i, −1, 1),
//	      skipping terms with θ_i < tol
//	  stop when ‖T‖ < tol
//	  μ = cos‖T‖·μ + sin‖T‖·T/‖T‖, renormalised when ‖μ‖ > tol
//	result = (Σ_i n_i/N)·μ
//
// An antipodal direction (sin θ_i < tol with θ_i > π/2) is also skipped:
// its logarithm is undefined and mergekit's θ/sin θ blows up there.
// With no vector longer than tol the result is zero (all a_i = 0).
func KarcherCoefficients(g []float64, maxIter int, tol float64) []float64 {
	n := int(math.Sqrt(float64(len(g))))
	norm := make([]float64, n)
	var valid []int
	var scale float64
	for i := range n {
		norm[i] = math.Sqrt(g[i*n+i])
		scale += norm[i] / float64(n)
		if norm[i] > tol {
			valid = append(valid, i)
		}
	}
	a := make([]float64, n)
	if len(valid) == 0 {
		return a
	}
	// Work on the unit vectors of V: U is their Gram matrix.
	m := len(valid)
	u := make([]float64, m*m)
	for p, i := range valid {
		for q, k := range valid {
			u[p*m+q] = g[i*n+k] / (norm[i] * norm[k])
		}
	}
	alpha := 1 / float64(m)
	mean := make([]float64, m) // μ = Σ mean_p·u_p
	for p := range mean {
		mean[p] = alpha
	}
	if mn := math.Sqrt(max(quadForm(u, mean), 0)); mn < tol {
		clear(mean)
		mean[0] = 1
	} else {
		scaleVec(mean, 1/mn)
	}
	tangent := make([]float64, m)
	dots := make([]float64, m)
	for range maxIter {
		matVec(dots, u, mean) // dots_p = μ·u_p
		clear(tangent)
		for p := range m {
			cos := min(max(dots[p], -1), 1)
			theta := math.Acos(cos)
			sin := math.Sin(theta)
			if theta < tol || (sin < tol && theta > math.Pi/2) {
				continue
			}
			f := alpha * theta / sin
			tangent[p] += f
			for q := range m {
				tangent[q] -= f * cos * mean[q]
			}
		}
		tn := math.Sqrt(max(quadForm(u, tangent), 0))
		if tn < tol {
			break
		}
		c, s := math.Cos(tn), math.Sin(tn)/tn
		for p := range mean {
			mean[p] = c*mean[p] + s*tangent[p]
		}
		if un := math.Sqrt(max(quadForm(u, mean), 0)); un > tol {
			scaleVec(mean, 1/un)
		}
	}
	for p, i := range valid {
		a[i] = scale * mean[p] / norm[i]
	}
	return a
}

func scaleVec(v []float64, s float64) {
	for i := range v {
		v[i] *= s
	}
}

// matVec computes dst = G·v for the square matrix g.
func matVec(dst, g, v []float64) {
	n := len(v)
	for i := range n {
		var s float64
		for k := range n {
			s += g[i*n+k] * v[k]
		}
		dst[i] = s
	}
}
