package evolve

import (
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// cmaes drives gonum's CmaEsChol directly through its optimize.Method
// channels, so each of its iterations is one generation of the engine.
// It searches the continuous genes its technique uses (Space.Used); the
// other genes stay at the technique's neutral values. Genes are clamped to
// [0,1] when decoded.
type cmaes struct {
	op        *operators
	technique string
	used      []int
	base      Genome
	method    *optimize.CmaEsChol
	ops       chan optimize.Task
	results   chan optimize.Task
	pending   []optimize.Task
	asked     bool // a generation was handed out and not yet told
	done      bool
	closed    bool
}

func newCMAES(op *operators, technique string, sigma float64, population int, seed uint64) *cmaes {
	c := &cmaes{op: op, technique: technique, used: op.space.Used(technique), base: op.neutral(technique)}
	if len(c.used) == 0 {
		c.done = true
		return c
	}
	// gonum samples mean + A·z with A the Cholesky factor it adapts: its
	// InitStepSize only scales the evolution paths. The initial spread σ0
	// must therefore be given as InitCholesky = chol(σ0²·I); with the
	// default identity every gene would start with σ = 1, far outside [0,1].
	var chol mat.Cholesky
	diag := make([]float64, len(c.used))
	for i := range diag {
		diag[i] = sigma * sigma
	}
	chol.Factorize(mat.NewDiagDense(len(diag), diag))
	c.method = &optimize.CmaEsChol{InitStepSize: sigma, InitCholesky: &chol, Population: population, Src: rand.NewPCG(seed, 0xc3a5c85c97cb3127)}
	n := c.method.Init(len(c.used), population)
	x0 := make([]float64, len(c.used))
	for i, gi := range c.used {
		x0[i] = c.base.Genes[gi]
	}
	tasks := make([]optimize.Task, n)
	for i := range tasks {
		tasks[i] = optimize.Task{ID: i, Location: &optimize.Location{X: slices.Clone(x0)}}
	}
	c.ops, c.results = make(chan optimize.Task), make(chan optimize.Task)
	go c.method.Run(c.ops, c.results, tasks)
	return c
}

// Population is CMA-ES's λ (gonum's default 4+⌊3 ln n⌋ when 0 was asked).
func (c *cmaes) ask(int) []*individual {
	if c.done {
		return nil
	}
	c.pending = c.pending[:0]
	pop := c.method.Population
	for len(c.pending) < pop {
		t, ok := <-c.ops
		if !ok {
			c.done, c.closed = true, true
			return nil
		}
		switch t.Op {
		case optimize.FuncEvaluation:
			t.Location = &optimize.Location{X: slices.Clone(t.X)}
			c.pending = append(c.pending, t)
		case optimize.MajorIteration:
			c.results <- t // acknowledge; Run then samples the next generation
		case optimize.MethodDone:
			c.finish()
			return nil
		}
	}
	c.asked = true
	out := make([]*individual, len(c.pending))
	for i, t := range c.pending {
		g := c.base.Clone()
		for k, gi := range c.used {
			g.Genes[gi] = clamp01(t.X[k])
		}
		out[i] = &individual{genome: g, origin: "cmaes"}
	}
	return out
}

// tell hands CMA-ES the generation's ranking (it uses nothing else): a
// candidate's F is its place when ranked as everywhere (see better), so
// promoted candidates rank above the rest and failed ones last.
func (c *cmaes) tell(_ int, inds []*individual) {
	ranked := slices.Clone(inds)
	sortByFitness(ranked)
	for i, t := range c.pending {
		t.F = float64(slices.Index(ranked, inds[i]))
		c.results <- t
	}
	c.asked = false
}

// finish tells Run to stop and drains it.
func (c *cmaes) finish() {
	if c.closed || c.method == nil {
		c.done = true
		return
	}
	c.done, c.closed = true, true
	c.results <- optimize.Task{Op: optimize.PostIteration}
	close(c.results)
	for range c.ops {
	}
}

func (c *cmaes) front() []*individual { return nil }

// close stops Run wherever it is: waiting for results of a generation that
// will never be told (a cancelled run), or about to report an iteration.
func (c *cmaes) close() {
	if c.closed || c.method == nil {
		return
	}
	if !c.asked {
		<-c.ops // the MajorIteration or MethodDone that follows the last tell
	}
	c.finish()
}
