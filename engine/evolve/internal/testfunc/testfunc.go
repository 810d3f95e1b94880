// Package testfunc holds synthetic fitness landscapes of known optimum on
// the unit cube, on which the optimisers of engine/evolve are tested the
// way gonum tests its optimize methods on optimize/functions: a method
// must get close to the optimum within a budget, and closer than random
// search with the same budget. Every landscape is minimised and defined for
// x in [0,1]^n, the range of evomerge's genes.
package testfunc

import (
	"cmp"
	"math"
	"slices"
)

// Sphere is Σ (x_i − c_i)²: one smooth, separable basin, 0 at x = Center.
type Sphere struct{ Center []float64 }

// F evaluates the landscape at x (len(x) = len(Center)).
func (s Sphere) F(x []float64) float64 {
	var f float64
	for i, c := range s.Center {
		f += (x[i] - c) * (x[i] - c)
	}
	return f
}

// Ellipsoid is Σ 10^(6·i/(n−1)) (x_i − c_i)²: the sphere stretched to a
// condition number of 10⁶, which an isotropic search crosses slowly and a
// covariance-adapting one learns. 0 at x = Center.
type Ellipsoid struct{ Center []float64 }

// F evaluates the landscape at x.
func (e Ellipsoid) F(x []float64) float64 {
	n := len(e.Center)
	var f float64
	for i, c := range e.Center {
		w := 1.0
		if n > 1 {
			w = math.Pow(10, 6*float64(i)/float64(n-1))
		}
		f += w * (x[i] - c) * (x[i] - c)
	}
	return f
}

// ZDT1 is Zitzler, Deb and Thiele's first bi-objective problem:
//
//	f1 = x_0,  g = 1 + 9·mean(x_1 … x_{n−1}),  f2 = g·(1 − √(f1/g))
//
// Both objectives are minimised. Its Pareto set is x_1 = … = x_{n−1} = 0
// (g = 1) with any x_0, where the front is the convex curve f2 = 1 − √f1.
type ZDT1 struct{}

// F evaluates both objectives at x (len(x) ≥ 2).
func (ZDT1) F(x []float64) (f1, f2 float64) {
	var s float64
	for _, v := range x[1:] {
		s += v
	}
	g := 1 + 9*s/float64(len(x)-1)
	f1 = x[0]
	return f1, g * (1 - math.Sqrt(f1/g))
}

// FrontGap is how far above the Pareto front a point lies: f2 − (1 − √f1),
// 0 on the front.
func (ZDT1) FrontGap(f1, f2 float64) float64 { return f2 - (1 - math.Sqrt(f1)) }

// Hypervolume is the area dominated by a set of points of a minimised
// bi-objective problem and bounded by ref: the larger, the closer to the
// front and the wider spread the set. Points not better than ref in both
// objectives add nothing.
func Hypervolume(points [][2]float64, ref [2]float64) float64 {
	var in [][2]float64
	for _, p := range points {
		if p[0] < ref[0] && p[1] < ref[1] {
			in = append(in, p)
		}
	}
	slices.SortFunc(in, func(a, b [2]float64) int {
		if c := cmp.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return cmp.Compare(a[1], b[1])
	})
	// The staircase of the non-dominated points, f1 ascending and f2
	// descending: between one step's f1 and the next, the dominated height
	// is ref's f2 minus the step's.
	var stairs [][2]float64
	for _, p := range in {
		if len(stairs) == 0 || p[1] < stairs[len(stairs)-1][1] {
			stairs = append(stairs, p)
		}
	}
	var area float64
	for i, p := range stairs {
		next := ref[0]
		if i+1 < len(stairs) {
			next = stairs[i+1][0]
		}
		area += (next - p[0]) * (ref[1] - p[1])
	}
	return area
}
