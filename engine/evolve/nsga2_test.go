package evolve

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/evolve/internal/testfunc"
)

// TestCrowdingDistance: on a front of three points the boundary points
// are infinitely crowded and the middle one gets the sum over objectives
// of its neighbours' normalised gap.
func TestCrowdingDistance(t *testing.T) {
	front := []*individual{{id: "a", objs: []float64{0, 4}}, {id: "b", objs: []float64{1, 1}}, {id: "c", objs: []float64{2, 0}}}
	crowding(front)
	for _, ind := range front {
		want := math.Inf(1)
		if ind.id == "b" {
			want = (2-0)/2.0 + (4-0)/4.0
		}
		if ind.crowd != want {
			t.Errorf("%s: crowding %v, want %v", ind.id, ind.crowd, want)
		}
	}
}

// TestNSGA2OnZDT1: in 600 evaluations NSGA-II's front lies on ZDT1's
// Pareto front (mean gap < 0.02) and spreads along it: its hypervolume is
// within 10% of the front's own, ~0.877 with reference point (1.1, 1.1),
// where random search's evaluations cover a small fraction.
func TestNSGA2OnZDT1(t *testing.T) {
	s := unitSpace(t, "linear")
	used := s.Used("linear")
	var z testfunc.ZDT1
	fit := func(g Genome) (float64, []float64) {
		f1, f2 := z.F(genesAt(g, used))
		return -(f1 + f2), []float64{-f1, -f2}
	}
	// ∫₀¹ (1.1 − (1 − √x)) dx + 0.1·1.1
	const ideal = 0.1 + 2.0/3 + 0.11
	ref := [2]float64{1.1, 1.1}
	points := func(inds []*individual) [][2]float64 {
		var p [][2]float64
		for _, ind := range inds {
			p = append(p, [2]float64{-ind.objs[0], -ind.objs[1]})
		}
		return p
	}
	for seed := uint64(1); seed <= 3; seed++ {
		ev := config.Default().Evolution
		ev.Optimizer, ev.Seed, ev.Population = "nsga2", seed, 20
		n := newOptimizer(ev, unitOperators(s), nil).(*nsga2)
		optimise(n, 30, fit)
		front := n.front()
		var gap float64
		for _, ind := range front {
			gap += z.FrontGap(-ind.objs[0], -ind.objs[1])
			for _, other := range front {
				if dominates(other, ind) {
					t.Fatalf("seed %d: %s on the front is dominated by %s", seed, ind.id, other.id)
				}
			}
		}
		gap /= float64(len(front))
		hv := testfunc.Hypervolume(points(front), ref)

		ev.Optimizer = "random"
		rnd := testfunc.Hypervolume(points(optimise(newOptimizer(ev, unitOperators(s), nil), 30, fit)), ref)
		t.Logf("seed %d: %d on the front, mean gap %.4f, hypervolume %.3f of %.3f; random search %.3f", seed, len(front), gap, hv, ideal, rnd)
		if gap > 0.02 || hv < 0.9*ideal || rnd > hv/2 {
			t.Errorf("seed %d: front gap %.4f, hypervolume %.3f (random %.3f, ideal %.3f)", seed, gap, hv, rnd, ideal)
		}
	}
}

// TestNSGA2KeepsTheBest: (μ+λ) selection keeps the non-dominated
// candidates of parents and children together, and the population size.
func TestNSGA2KeepsTheBest(t *testing.T) {
	s := unitSpace(t, "linear")
	n := &nsga2{op: unitOperators(s), rng: rand.New(rand.NewPCG(13, 14)), size: 4}
	parents := n.ask(0)
	for i, ind := range parents {
		ind.id, ind.objs = "p"+string(rune('0'+i)), []float64{float64(i), float64(-i)} // all mutually non-dominated
	}
	n.tell(0, parents)
	children := n.ask(1)
	for i, ind := range children {
		ind.id, ind.objs = "c"+string(rune('0'+i)), []float64{-10, -10} // dominated by every parent
	}
	children[0].objs = []float64{10, 10} // dominates everything
	n.tell(1, children)
	if len(n.pop) != 4 {
		t.Fatalf("population of %d", len(n.pop))
	}
	front := n.front()
	if len(front) != 1 || front[0].id != "c0" {
		t.Errorf("front %v, want the dominating child alone", front)
	}
	for _, ind := range n.pop {
		if ind.id[0] == 'c' && ind.id != "c0" {
			t.Errorf("dominated child %s survived", ind.id)
		}
	}
}
