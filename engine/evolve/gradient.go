package evolve

import (
	"errors"
	"fmt"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/llm/gradshape"
)

// gradientAscent follows the exact gradient of the fitness (optimizer
// "gradient"). Each generation scores one candidate, the centre, on the
// generation's windows; the worker computes its perplexity with
// engine/llm's gradient graph together with the derivative in every
// tensor's task-vector coefficients (eval.CandidateRequest.Gradient), the
// engine carries that to the genes through the genome's decoding
// (geneGradient), and Adam moves the centre up the gradient.
//
// Why: on a merge of task vectors the fitness is a smooth function of a
// few dozen genes, and ES's pairs estimate its gradient with an error of
// about (genes + 2)/pairs times its size — the search stalls where the
// exact gradient, which costs about seven evaluations, keeps descending
// (docs/status.md has the measurements). It needs a base, a technique
// whose tensors are sums of task vectors (task_arithmetic), perplexity as
// the only objective and a model the gradient graph covers (a dense llama,
// package gradshape; small: the worker holds every model in F32);
// optimizer "auto" chooses it where all hold (autoOptimizer), ES elsewhere.
//
// The centre is each generation's leader (its finalist).
type gradientAscent struct {
	centre
	rate float64
}

func newGradientAscent(op *operators, technique string, rate float64) *gradientAscent {
	return &gradientAscent{centre: newCentre(op, technique), rate: rate}
}

// ask returns the centre, asking for its gradient.
func (g *gradientAscent) ask(int) []*individual {
	if len(g.used) == 0 {
		return nil
	}
	return []*individual{{genome: g.genome(0, nil), origin: "gradient", wantGrad: true}}
}

// tell takes an Adam step along the centre's gradient, when it has one.
func (g *gradientAscent) tell(_ int, inds []*individual) {
	if len(inds) == 0 || inds[0].failed || len(inds[0].grad) == 0 {
		return
	}
	d := make([]float64, len(g.used))
	for i, gi := range g.used {
		d[i] = inds[0].grad[gi]
	}
	g.step(d, g.rate)
}

// leader is the centre, when it was scored.
func (g *gradientAscent) leader(inds []*individual) *individual {
	if len(inds) > 0 && !inds[0].failed {
		return inds[0]
	}
	return nil
}

func (g *gradientAscent) front() []*individual { return nil }
func (g *gradientAscent) close()               {}

// gradientProbe is the step of the central differences that carry the
// coefficients' gradient to the genes. The decoding is linear in each
// gene (bilinear in λ and a weight) apart from 4-digit rounding, so the
// differences are exact to about 1e-4/(probe × range).
const gradientProbe = 0.05

// geneGradient carries d, the derivative of the mean log-perplexity in
// the task-vector coefficients of genome g's recipe (the worker's
// eval.GradientReply), to the fitness's derivative in each gene the
// technique reads: ∂F/∂gene = −w_ppl · Σ_tensor Σ_model d · ∂c/∂gene, with
// ∂c/∂gene from the recipes of g with the gene moved by ±gradientProbe
// (merge.Recipe.TaskVectorCoefficients). Genes the technique does not read
// get 0.
func (s *Space) geneGradient(g Genome, d *eval.GradientReply, wppl float64) ([]float64, error) {
	if d == nil || len(d.D) != len(d.Tensors) {
		return nil, errors.New("the worker sent no gradient")
	}
	coefs := func(x Genome) ([][]float64, error) {
		r, err := s.Decode(x)
		if err != nil {
			return nil, err
		}
		out := make([][]float64, len(d.Tensors))
		for t, name := range d.Tensors {
			c, err := r.TaskVectorCoefficients(name, s.Layers)
			if err != nil {
				return nil, err
			}
			if c != nil && len(c) != len(d.D[t]) {
				return nil, fmt.Errorf("tensor %s: %d coefficients, the gradient has %d", name, len(c), len(d.D[t]))
			}
			out[t] = c
		}
		return out, nil
	}
	out := make([]float64, len(g.Genes))
	for _, gi := range s.Used(g.Technique) {
		up, down := g.Clone(), g.Clone()
		up.Genes[gi] += gradientProbe
		down.Genes[gi] -= gradientProbe
		cu, err := coefs(up)
		if err != nil {
			return nil, err
		}
		cd, err := coefs(down)
		if err != nil {
			return nil, err
		}
		var sum float64
		for t := range d.Tensors {
			for i := range cu[t] {
				sum += d.D[t][i] * (cu[t][i] - cd[t][i]) / (2 * gradientProbe)
			}
		}
		out[gi] = -wppl * sum
	}
	return out, nil
}

// maxGradientParams bounds the models optimizer "auto" gives to the
// gradient: the worker holds the base and every source in F32, with the
// graph's activations and gradients, about 4·(4 + 3·M) bytes per
// parameter (2.4 GB for three 100M-parameter experts).
const maxGradientParams = 200_000_000

// autoOptimizer is what optimizer "auto" runs: "gradient" where the run
// allows it, else "es", with the reason for the log.
func (e *engine) autoOptimizer(measured bool) (string, string) {
	cfg := e.cfg
	no := func(format string, args ...any) (string, string) {
		return "es", "evolution strategy: " + fmt.Sprintf(format, args...)
	}
	switch {
	case measured:
		return no("scores come from a score function, which gives no gradients")
	case !cfg.Evaluation.Objectives.PerplexityOnly():
		return no("the gradient is of perplexity alone, and other objectives are weighted")
	case e.space.Base == "":
		return no("a gradient of task vectors needs a base model")
	}
	// Whether the technique's tensors are task-vector sums depends on its
	// method and parameters, not on the tensor: any block tensor answers.
	technique := cfg.Evolution.CMAESTechnique
	r, err := e.space.Decode(e.ops.neutral(technique))
	if err == nil {
		_, err = r.TaskVectorCoefficients("blk.0.attn_q.weight", e.space.Layers)
	}
	if err != nil {
		return no("%s: %v", technique, err)
	}
	f, err := gguf.Open(e.space.Base)
	if err != nil {
		return no("%v", err)
	}
	defer f.Close()
	if _, err := gradshape.Check(f); err != nil {
		return no("%v", err)
	}
	for i, src := range e.space.Sources {
		sf, err := gguf.Open(src)
		if err != nil {
			return no("%v", err)
		}
		err = gradshape.Same(f, sf)
		sf.Close()
		if err != nil {
			return no("source %s: %v", e.space.Names[i], err)
		}
	}
	var params uint64
	for _, ti := range f.Tensors {
		params += ti.Elements()
	}
	if params > maxGradientParams {
		return no("%d M parameters: the gradient graph holds every model in F32 (up to %d M)", params/1_000_000, maxGradientParams/1_000_000)
	}
	return "gradient", fmt.Sprintf("exact gradients of %s (a %s model of %d M parameters with a base)", technique, f.Metadata.Architecture(), max(1, params/1_000_000))
}
