package evolve

import (
	"math/rand/v2"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/evolve/internal/testfunc"
)

// esRun runs ES for gens generations of population 10 on f over the six
// linear weights, each score f plus noise: a shift common to the
// generation (its windows' difficulty) and per-candidate luck of spread
// luck. It returns the true loss of the last generation's leader. tweak,
// when not nil, changes the evolution settings first.
func esRun(t *testing.T, name string, f func([]float64) float64, seed uint64, gens int, luck float64, tweak func(*config.Evolution)) float64 {
	t.Helper()
	s := unitSpace(t, "linear")
	used := s.Used("linear")
	ev := config.Default().Evolution
	ev.Optimizer, ev.Seed, ev.Population, ev.CMAESTechnique, ev.Generations = name, seed, 10, "linear", gens
	if tweak != nil {
		tweak(&ev)
	}
	o := newOptimizer(ev, unitOperators(s), nil)
	defer o.close()
	noise := rand.New(rand.NewPCG(seed, 99))
	var lead *individual
	for gen := range gens {
		inds := o.ask(gen)
		shift := noise.NormFloat64()
		for _, ind := range inds {
			ind.fitness = -f(genesAt(ind.genome, used)) + shift + luck*noise.NormFloat64()
		}
		o.tell(gen, inds)
		lead = bestOf(inds)
		if l, ok := o.(leaderer); ok {
			lead = l.leader(inds)
		}
	}
	return f(genesAt(lead.genome, used))
}

// TestESOnSphere: ES's centre reaches the sphere's optimum (loss < 0.01
// after 30 generations of 9) without noise, and with a generation-wide
// shift plus per-candidate luck (σ 0.02, the spread of a zoo fitness on
// 8 windows per text) its last centre is closer to the optimum than the
// GA's last generation leader (seeds 1-5).
func TestESOnSphere(t *testing.T) {
	f := testfunc.Sphere{Center: center}.F
	var clean, esNoisy, gaNoisy []float64
	for seed := uint64(1); seed <= 5; seed++ {
		clean = append(clean, esRun(t, "es", f, seed, 30, 0, nil))
		esNoisy = append(esNoisy, esRun(t, "es", f, seed, 30, 0.02, nil))
		gaNoisy = append(gaNoisy, esRun(t, "ga", f, seed, 27, 0.02, nil))
	}
	t.Logf("sphere, loss of the last leader over seeds 1-5: es %.2e without noise; with noise es %.2e, ga %.2e", mean(clean), mean(esNoisy), mean(gaNoisy))
	if mean(clean) > 0.01 {
		t.Errorf("ES's centre at loss %.2e after 270 evaluations", mean(clean))
	}
	if mean(esNoisy) > mean(gaNoisy) {
		t.Errorf("with noise ES's centre is at loss %.2e, the GA's leader at %.2e", mean(esNoisy), mean(gaNoisy))
	}
}

// TestESStepDecay: with per-candidate luck (σ 0.1, 80 generations), a step that falls from
// es_rate to a tenth of it over the run leaves the last centre closer to
// the sphere's optimum than the constant step (seeds 1-8), which keeps
// the centre wandering about it; the step sizes run linearly between the
// ends.
func TestESStepDecay(t *testing.T) {
	e := &es{rate: 0.05, rateEnd: 0.005, gens: 10}
	for _, c := range []struct {
		gen  int
		want float64
	}{{0, 0.05}, {9, 0.005}, {3, 0.035}, {12, 0.005}} {
		if got := e.stepSize(c.gen); abs(got-c.want) > 1e-12 {
			t.Errorf("step after generation %d: %v, want %v", c.gen, got, c.want)
		}
	}
	if got := (&es{rate: 0.05, rateEnd: 0.005, gens: 1}).stepSize(0); got != 0.05 {
		t.Errorf("one generation: step %v, want es_rate", got)
	}
	f := testfunc.Sphere{Center: center}.F
	var constant, decayed []float64
	for seed := uint64(1); seed <= 8; seed++ {
		constant = append(constant, esRun(t, "es", f, seed, 80, 0.1, nil))
		decayed = append(decayed, esRun(t, "es", f, seed, 80, 0.1, func(ev *config.Evolution) { ev.ESRateEnd = ev.ESRate / 10 }))
	}
	t.Logf("sphere with luck 0.1, 80 generations, loss of the last centre over seeds 1-8: constant step %.2e, decaying %.2e", mean(constant), mean(decayed))
	if mean(decayed) >= mean(constant) {
		t.Errorf("the decaying step ends at loss %.2e, the constant one at %.2e", mean(decayed), mean(constant))
	}
}

// TestESGenomes: ES proposes its centre, then antithetic pairs
// symmetric about it, varying only the genes of its technique, within
// [0,1]; a generation whose pairs all failed leaves the centre.
func TestESGenomes(t *testing.T) {
	s := unitSpace(t, "ties")
	op := unitOperators(s)
	e := newES(op, "ties", 0.1, 0.03, 0.03, 10, 10, rand.New(rand.NewPCG(1, 2)))
	used, neutral := s.Used("ties"), op.neutral("ties")
	inds := e.ask(0)
	if len(inds) != 9 {
		t.Fatalf("population of %d, want the centre and 4 pairs", len(inds))
	}
	isUsed := map[int]bool{}
	for _, i := range used {
		isUsed[i] = true
	}
	for k, ind := range inds {
		for i, g := range ind.genome.Genes {
			if !isUsed[i] && g != neutral.Genes[i] || g < 0 || g > 1 {
				t.Fatalf("candidate %d gene %d = %v (neutral %v, used %v)", k, i, g, neutral.Genes[i], isUsed[i])
			}
		}
	}
	for k := range 4 {
		plus, minus := inds[1+2*k].genome.Genes, inds[2+2*k].genome.Genes
		for _, i := range used {
			c := inds[0].genome.Genes[i]
			if plus[i] > 0 && plus[i] < 1 && minus[i] > 0 && minus[i] < 1 && abs(plus[i]+minus[i]-2*c) > 1e-12 {
				t.Fatalf("pair %d gene %d: %v and %v are not symmetric about %v", k, i, plus[i], minus[i], c)
			}
		}
	}
	for _, ind := range inds {
		ind.failed = ind.origin != "es-centre"
	}
	before := genesAt(inds[0].genome, used)
	e.tell(0, inds)
	after := genesAt(e.ask(1)[0].genome, used)
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("the centre moved without a scored pair: %v → %v", before, after)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
