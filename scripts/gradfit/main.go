// Command gradfit measures what exact gradients buy the recipe search. It
// fits the task-arithmetic weights of the zoo's experts over stories15M —
// one weight per expert for the output norm, per layer for the block
// norms, attention and MLP, and one for the rest: the layout of the
// search's default genome (evolution with layer_groups ≥ the depth and
// weight_genes "kinds", λ left at 1) — by Adam on engine/llm.Gradient's
// exact gradient of the validation loss, each step on windows drawn afresh
// (seeded) from every validation window, and writes the fitted recipe:
//
//	go run ./scripts/gradfit -seed 1 -steps 56 -out fit.toml
//	evomerge-tui merge fit.toml -o fit.gguf
//	evomerge-tui evaluate fit.gguf --chunks 0 --text zoo:bible/test --text zoo:moby/test --text zoo:sotu/test
//
// A step of 4 windows per text takes about 4.3 s on 2 cores, so 56 steps
// take about 4 minutes, less than the default search's 36 generations of
// 9 evaluations. It is a measurement, not part of the search: the
// evolution does not use gradients yet (docs/status.md).
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/zoo"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// The coefficient layout: per expert, the output norm, per layer the
// norms, attention and MLP, then the rest; weightSlots gives each slot's
// filter and how many per-layer values it holds.
var weightSlots = []struct {
	filter   string
	perLayer bool
}{{"output_norm", false}, {"_norm", true}, {"attn", true}, {"ffn", true}, {"", false}}

// slotsPerExpert is the number of coefficients of one expert.
func slotsPerExpert(layers int) int {
	n := 0
	for _, w := range weightSlots {
		if w.perLayer {
			n += layers
		} else {
			n++
		}
	}
	return n
}

// layout is the weight value of expert s under layout: per slot, one
// value or one per layer, read from coef from offset s·slotsPerExpert.
func layout(coef []float64, s, layers int) merge.Value {
	i := s * slotsPerExpert(layers)
	var v merge.Value
	for _, w := range weightSlots {
		n := 1
		if w.perLayer {
			n = layers
		}
		v.Filters = append(v.Filters, merge.Filtered{Filter: w.filter, Anchors: append([]float64(nil), coef[i:i+n]...)})
		i += n
	}
	return v
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gradfit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Uint64("seed", 1, "seed of the window draws")
	steps := fs.Int("steps", 56, "Adam steps")
	per := fs.Int("windows", 4, "windows per validation text per step")
	rate := fs.Float64("rate", 0.01, "Adam's step size")
	threads := fs.Int("threads", 2, "CPU threads")
	out := fs.String("out", "fit.toml", "the fitted recipe")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *steps < 1 || *per < 1 || *rate <= 0 {
		fmt.Fprintln(stderr, "gradfit: -steps and -windows must be at least 1, -rate positive")
		return 2
	}
	if err := fit(*seed, *steps, *per, *rate, *threads, *out, stdout); err != nil {
		fmt.Fprintln(stderr, "gradfit:", err)
		return 1
	}
	return 0
}

func fit(seed uint64, steps, per int, rate float64, threads int, out string, stdout io.Writer) error {
	const n, from = 256, 128 // the perplexity windows of engine/eval, scored from n/2
	experts := zoo.Experts()
	base, err := llm.Load(zoo.Model(zoo.Base), llm.ModelParams{})
	if err != nil {
		return fmt.Errorf("%w (run `make zoo`)", err)
	}
	defer base.Close()
	layers := base.Layers()
	// Each tensor's coefficient: its slot under the layout's filters,
	// resolved as the merge resolves the fitted recipe.
	index := make([]float64, slotsPerExpert(layers)*len(experts))
	for i := range index {
		index[i] = float64(i)
	}
	coefOf := func(name string, s int) int {
		v, _ := layout(index, s, layers).At(name, merge.LayerOf(name), layers)
		return int(v)
	}
	var paths []string
	for _, e := range experts {
		paths = append(paths, zoo.Model(e))
	}
	spec, weights, err := llm.GradientWeights(zoo.Model(zoo.Base), paths, coefOf)
	if err != nil {
		return err
	}
	g, err := llm.NewGradient(spec, weights, len(index), n, from, threads)
	if err != nil {
		return err
	}
	defer g.Close()

	// Every validation window of every text, BOS first when the model
	// adds one (engine/eval's perplexity windows).
	var texts [][][]int32
	for _, e := range experts {
		text, err := zoo.Text(e, "validation")
		if err != nil {
			return err
		}
		toks, err := base.Tokenize(text, true)
		if err != nil {
			return err
		}
		var ws [][]int32
		for c := 0; (c+1)*n <= len(toks); c++ {
			w := make([]int32, n)
			for i := range w {
				w[i] = int32(toks[c*n+i])
			}
			if base.AddsBOS() {
				w[0] = int32(base.BOS())
			}
			ws = append(ws, w)
		}
		if len(ws) < per {
			return fmt.Errorf("validation text %s has %d windows, fewer than %d", e, len(ws), per)
		}
		texts = append(texts, ws)
	}

	coef := make([]float32, len(index))
	for i := range coef {
		coef[i] = 1 / float32(len(experts)) // the uniform average
	}
	grad, sum := make([]float32, len(coef)), make([]float64, len(coef))
	mom, vel := make([]float64, len(coef)), make([]float64, len(coef))
	const b1, b2 = 0.9, 0.999
	rng := rand.New(rand.NewPCG(seed, 1))
	start := time.Now()
	for step := 1; step <= steps; step++ {
		clear(sum)
		var loss float64
		for _, ws := range texts {
			for _, k := range rng.Perm(len(ws))[:per] {
				l, err := g.Window(coef, ws[k], grad)
				if err != nil {
					return err
				}
				loss += l
				for i, x := range grad {
					sum[i] += float64(x)
				}
			}
		}
		m := float64(per * len(texts))
		for i := range coef {
			gi := sum[i] / m
			mom[i] = b1*mom[i] + (1-b1)*gi
			vel[i] = b2*vel[i] + (1-b2)*gi*gi
			mh, vh := mom[i]/(1-math.Pow(b1, float64(step))), vel[i]/(1-math.Pow(b2, float64(step)))
			coef[i] -= float32(rate * mh / (math.Sqrt(vh) + 1e-8))
		}
		fmt.Fprintf(stdout, "step %d: loss %.4f on %d windows (%s)\n", step, loss/m, int(m), time.Since(start).Round(time.Second))
	}

	values := make([]float64, len(coef))
	for i, c := range coef {
		values[i] = math.Round(float64(c)*1e5) / 1e5
	}
	r := &merge.Recipe{Method: "task_arithmetic", Base: zoo.Model(zoo.Base), OutType: "keep",
		Name: fmt.Sprintf("gradfit seed %d, %d steps of %d windows per text", seed, steps, per)}
	for s, e := range experts {
		r.Models = append(r.Models, merge.ModelRef{Model: zoo.Model(e), Params: merge.Params{"weight": layout(values, s, layers)}})
	}
	text, err := r.Encode()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, text, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s after %d steps in %s\n", out, steps, time.Since(start).Round(time.Second))
	return nil
}
