package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/format"
	"github.com/evomerge/evomerge/engine/gguf"
)

type evalOptions struct {
	texts       []string
	ctx         int
	chunks      int
	tasks       string
	json        bool
	reference   string
	noCoherence bool
}

// defaultEvalText is what --evaluate scores without --text: Newton's
// Opticks, bundled and held out from every zoo model.
const defaultEvalText = "zoo:opticks/test"

func (o *evalOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&o.texts, "text", nil, `text to score (repeatable): a file or "zoo:DOMAIN[/SPLIT]" (default `+defaultEvalText+`)`)
	f.IntVar(&o.ctx, "ctx", 256, "perplexity window in tokens (llama-perplexity's -c)")
	f.IntVar(&o.chunks, "chunks", 0, "windows per text (0 = the whole text)")
	f.StringVar(&o.tasks, "tasks", "", "multiple-choice tasks, JSONL: {context, choices, answer}")
	f.BoolVar(&o.json, "json", false, "print one JSON object")
	f.StringVar(&o.reference, "reference", "", "model that judges the fluency of generated text (default: the model itself)")
	f.BoolVar(&o.noCoherence, "no-coherence", false, "skip the coherence score")
}

// evalReport is --evaluate's result; the first keys are the documented
// --json interface. A broken model's values are reported as such: the
// perplexity and coherence are eval.Float, "+Inf" or "NaN" when not
// finite, as in the worker protocol.
type evalReport struct {
	Model          string                `json:"model"`
	Perplexity     eval.Float            `json:"perplexity"`
	StdErr         eval.Float            `json:"perplexity_stderr"`
	Tokens         int                   `json:"tokens"`
	Coherence      *eval.Float           `json:"coherence"`
	TokensPerSec   float64               `json:"tokens_per_second"`
	Texts          []eval.TextPerplexity `json:"texts"`
	TaskAccuracy   *float64              `json:"task_accuracy,omitempty"`
	TaskAccuracyN  *float64              `json:"task_accuracy_norm,omitempty"`
	CoherenceParts *eval.CoherenceResult `json:"coherence_detail,omitempty"`
	Seconds        float64               `json:"seconds"`
	Device         eval.Placement        `json:"device"` // where the model ran
}

func (o *evalOptions) execute(cmd *cobra.Command, model string, hw hardwareFlags) error {
	ctx := cmd.Context()
	path, err := resolveModel(ctx, model)
	if err != nil {
		return err
	}
	if err := checkModelFile(path); err != nil {
		return err
	}
	refs := o.texts
	if len(refs) == 0 {
		refs = []string{defaultEvalText}
	}
	texts, err := eval.LoadTexts(refs)
	if err != nil {
		return err
	}
	var tasks []eval.Task
	if o.tasks != "" {
		f, err := os.Open(o.tasks)
		if err != nil {
			return err
		}
		tasks, err = eval.ReadTasks(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", o.tasks, err)
		}
	}
	pool, err := hw.newPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()

	start := time.Now()
	// Loading the model first says where it runs (and leaves it loaded for
	// the evaluation).
	device, err := pool.Placement(ctx, path)
	if err != nil {
		return err
	}
	bar := newLineProgress(os.Stderr, "evaluating")
	reply, err := pool.Perplexity(ctx, path, texts, eval.PerplexityOptions{Context: o.ctx, Chunks: o.chunks}, func(text string, done, total int) {
		bar.update(float64(done), float64(total), text)
	})
	bar.done()
	if err != nil {
		var we *eval.WorkerError
		if errors.As(err, &we) && we.Kind == eval.KindInput {
			return fmt.Errorf("%s: %s", path, we.Msg)
		}
		return err
	}
	rep := evalReport{Model: path, Texts: reply.Texts, Device: device}
	var nll, secs float64
	var windows int
	for _, t := range reply.Texts {
		nll += t.NLL * float64(t.Tokens)
		rep.Tokens += t.Tokens
		secs += t.Seconds
		windows += t.Chunks
	}
	ppl := math.Exp(nll / float64(rep.Tokens))
	rep.Perplexity = eval.Float(ppl)
	if len(reply.Texts) == 1 {
		rep.StdErr = eval.Float(reply.Texts[0].StdErr)
	} else {
		// Combine the per-text errors of ln ppl (independent texts).
		var v float64
		for _, t := range reply.Texts {
			w := float64(t.Tokens) / float64(rep.Tokens)
			se := t.StdErr / t.Perplexity
			v += w * w * se * se
		}
		rep.StdErr = eval.Float(ppl * math.Sqrt(v))
	}
	rep.TokensPerSec = float64(windows*o.ctx) / secs
	if !o.noCoherence {
		opt := eval.DefaultCoherence()
		if o.reference != "" {
			if opt.Reference, err = resolveModel(ctx, o.reference); err != nil {
				return err
			}
		}
		c, err := pool.Coherence(ctx, path, opt)
		if err != nil {
			return fmt.Errorf("coherence: %w", err)
		}
		score := eval.Float(c.Score)
		rep.Coherence, rep.CoherenceParts = &score, &c
	}
	if len(tasks) > 0 {
		tr, err := pool.Tasks(ctx, path, tasks)
		if err != nil {
			return fmt.Errorf("tasks: %w", err)
		}
		rep.TaskAccuracy, rep.TaskAccuracyN = &tr.Accuracy, &tr.AccuracyNorm
	}
	rep.Seconds = time.Since(start).Seconds()
	w := cmd.OutOrStdout()
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(w, "model        %s\n", path)
	fmt.Fprintf(w, "device       %s\n", device)
	for _, t := range rep.Texts {
		fmt.Fprintf(w, "text         %-10s ppl %9s ± %s  (%d tokens scored in %d windows of %d)\n", t.Name, format.Perplexity(t.Perplexity), format.Perplexity(t.StdErr), t.Tokens, t.Chunks, o.ctx)
	}
	if len(rep.Texts) > 1 {
		fmt.Fprintf(w, "perplexity   %s ± %s over all %d tokens\n", format.Perplexity(ppl), format.Perplexity(float64(rep.StdErr)), rep.Tokens)
	} else {
		fmt.Fprintf(w, "perplexity   %s ± %s (%d tokens)\n", format.Perplexity(ppl), format.Perplexity(float64(rep.StdErr)), rep.Tokens)
	}
	switch {
	case math.IsInf(ppl, 1):
		fmt.Fprintf(w, "             infinite: the model gives some token of the text probability zero (a broken model)\n")
	case math.IsNaN(ppl):
		fmt.Fprintf(w, "             NaN: the model's outputs are not numbers (a broken model: its activations overflow)\n")
	}
	if rep.Coherence != nil {
		fmt.Fprintf(w, "coherence    %s (reference perplexity %s, distinct-2 %s over %d prompts)\n", format.Fraction(float64(*rep.Coherence)),
			format.Perplexity(rep.CoherenceParts.RefPerplexity), format.Fraction(rep.CoherenceParts.Distinct2), len(rep.CoherenceParts.Samples))
	}
	if rep.TaskAccuracy != nil {
		fmt.Fprintf(w, "tasks        accuracy %s, length-normalised %s (%d tasks)\n", format.Fraction(*rep.TaskAccuracy), format.Fraction(*rep.TaskAccuracyN), len(tasks))
	}
	fmt.Fprintf(w, "speed        %.0f tokens/s (prompt processing)\n", rep.TokensPerSec)
	return nil
}

// checkModelFile gives a one-line error for missing or non-GGUF input
// before a worker is started.
func checkModelFile(path string) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Metadata.Architecture() == "" {
		return fmt.Errorf("%s: no general.architecture: not a model", path)
	}
	return nil
}
