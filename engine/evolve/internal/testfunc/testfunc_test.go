package testfunc

import (
	"math"
	"testing"
)

func TestLandscapesAtTheirOptimum(t *testing.T) {
	c := []float64{0.2, 0.9, 0.5}
	for _, tc := range []struct {
		name string
		f    func([]float64) float64
		at   []float64
		want float64
	}{
		{"sphere at centre", Sphere{c}.F, c, 0},
		{"sphere off centre", Sphere{c}.F, []float64{0.2, 0.9, 0.7}, 0.04},
		{"ellipsoid at centre", Ellipsoid{c}.F, c, 0},
		// The last axis weighs 10⁶, the middle one 10³.
		{"ellipsoid last axis", Ellipsoid{c}.F, []float64{0.2, 0.9, 0.6}, 1e6 * 0.01},
		{"ellipsoid middle axis", Ellipsoid{c}.F, []float64{0.2, 0.8, 0.5}, 1e3 * 0.01},
	} {
		if got := tc.f(tc.at); math.Abs(got-tc.want) > 1e-9*max(1, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestZDT1Front(t *testing.T) {
	var z ZDT1
	for _, x0 := range []float64{0, 0.25, 1} {
		f1, f2 := z.F([]float64{x0, 0, 0, 0})
		if f1 != x0 || math.Abs(f2-(1-math.Sqrt(x0))) > 1e-12 || math.Abs(z.FrontGap(f1, f2)) > 1e-12 {
			t.Errorf("x0=%v on the Pareto set: f=(%v, %v) gap %v", x0, f1, f2, z.FrontGap(f1, f2))
		}
	}
	// Off the Pareto set g = 1 + 9·mean = 4, f2 = 4·(1 − √(0.25/4)) = 3.
	f1, f2 := z.F([]float64{0.25, 1, 0, 0})
	if f1 != 0.25 || math.Abs(f2-3) > 1e-12 {
		t.Errorf("off the Pareto set: f=(%v, %v), want (0.25, 3)", f1, f2)
	}
}

func TestHypervolume(t *testing.T) {
	ref := [2]float64{1, 1}
	for _, tc := range []struct {
		name string
		pts  [][2]float64
		want float64
	}{
		{"empty", nil, 0},
		{"one point", [][2]float64{{0.5, 0.5}}, 0.25},
		{"origin dominates all", [][2]float64{{0, 0}, {0.5, 0.2}}, 1},
		// Staircase: [0,0.5)×0.6 + [0.5,1)×0.8.
		{"two steps", [][2]float64{{0.5, 0.2}, {0, 0.4}}, 0.5*0.6 + 0.5*0.8},
		{"dominated point adds nothing", [][2]float64{{0.5, 0.5}, {0.6, 0.6}}, 0.25},
		{"outside ref adds nothing", [][2]float64{{0.5, 0.5}, {1.5, 0}, {0, 1}}, 0.25},
	} {
		if got := Hypervolume(tc.pts, ref); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
