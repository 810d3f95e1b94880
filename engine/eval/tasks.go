package eval

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/evomerge/evomerge/kernels"
)

// Task is one multiple-choice item: the model should find Choices[Answer]
// the likeliest continuation of Context. A JSONL file holds one per line:
// {"context": "...", "choices": ["...", "..."], "answer": 1}.
type Task struct {
	Context string   `json:"context"`
	Choices []string `json:"choices"`
	Answer  int      `json:"answer"`
}

// TaskResult is the accuracy over a task set. Accuracy compares summed
// log-likelihoods; AccuracyNorm divides each by the choice's length in
// bytes first (lm-evaluation-harness's acc and acc_norm).
type TaskResult struct {
	Tasks        int     `json:"tasks"`
	Correct      int     `json:"correct"`
	Accuracy     float64 `json:"accuracy"`
	CorrectNorm  int     `json:"correct_norm"`
	AccuracyNorm float64 `json:"accuracy_norm"`
}

// ReadTasks parses a JSONL task file, reporting every bad line at once.
func ReadTasks(r io.Reader) ([]Task, error) {
	var tasks []Task
	var problems []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		raw := strings.TrimSpace(sc.Text())
		if raw == "" {
			continue
		}
		var t Task
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&t); err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", line, err))
			continue
		}
		if err := t.validate(); err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", line, err))
			continue
		}
		tasks = append(tasks, t)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%d bad task lines:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("no tasks")
	}
	return tasks, nil
}

func (t Task) validate() error {
	switch {
	case t.Context == "":
		return fmt.Errorf("empty context")
	case len(t.Choices) < 2:
		return fmt.Errorf("%d choices, need at least 2", len(t.Choices))
	case t.Answer < 0 || t.Answer >= len(t.Choices):
		return fmt.Errorf("answer %d is not a choice index (0..%d)", t.Answer, len(t.Choices)-1)
	}
	for i, c := range t.Choices {
		if c == "" {
			return fmt.Errorf("choice %d is empty", i)
		}
	}
	return nil
}

// ScoreTasks evaluates every task and returns the accuracies.
func ScoreTasks(ctx context.Context, lm LM, tasks []Task, progress func(done, total int)) (TaskResult, error) {
	res := TaskResult{Tasks: len(tasks)}
	for i, t := range tasks {
		if err := t.validate(); err != nil {
			return res, fmt.Errorf("task %d: %w", i, err)
		}
		best, bestNorm := -1, -1
		var bestLL, bestNormLL float64
		for c, choice := range t.Choices {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			ll, _, err := ContinuationLogLikelihood(lm, t.Context, choice)
			if err != nil {
				return res, fmt.Errorf("task %d choice %d: %w", i, c, err)
			}
			norm := ll / float64(len(choice))
			if best < 0 || ll > bestLL {
				best, bestLL = c, ll
			}
			if bestNorm < 0 || norm > bestNormLL {
				bestNorm, bestNormLL = c, norm
			}
		}
		if best == t.Answer {
			res.Correct++
		}
		if bestNorm == t.Answer {
			res.CorrectNorm++
		}
		if progress != nil {
			progress(i+1, len(tasks))
		}
	}
	res.Accuracy = float64(res.Correct) / float64(res.Tasks)
	res.AccuracyNorm = float64(res.CorrectNorm) / float64(res.Tasks)
	return res, nil
}

// ContinuationLogLikelihood returns the summed log-probability of the
// tokens continuation adds to prefix, and how many tokens that is. The
// continuation's tokens are those of tokenize(prefix+continuation) beyond
// the longest common prefix with tokenize(prefix), so merges across the
// boundary are handled.
func ContinuationLogLikelihood(lm LM, prefix, continuation string) (float64, int, error) {
	pre, err := lm.Tokenize(prefix, true)
	if err != nil {
		return 0, 0, err
	}
	full, err := lm.Tokenize(prefix+continuation, true)
	if err != nil {
		return 0, 0, err
	}
	p := 0
	for p < len(pre) && p < len(full) && pre[p] == full[p] {
		p++
	}
	if p == 0 {
		if len(full) == 0 {
			return 0, 0, fmt.Errorf("nothing to score")
		}
		// No shared prefix (no BOS): score from the second token.
		p = 1
	}
	if p >= len(full) {
		return 0, 0, fmt.Errorf("continuation %q adds no tokens", continuation)
	}
	if len(full) > lm.ContextSize() {
		return 0, 0, fmt.Errorf("%d tokens exceed the %d-token context", len(full), lm.ContextSize())
	}
	return scoreFrom(lm, full, p)
}

// scoreFrom decodes toks and sums log p(toks[i] | toks[:i]) for i ≥ from.
func scoreFrom(lm LM, toks []int, from int) (float64, int, error) {
	lm.Clear()
	v := lm.VocabSize()
	var ll float64
	// Rows needed: positions from-1 … len-2.
	for b := 0; b < len(toks)-1; b += lm.BatchSize() {
		end := min(b+lm.BatchSize(), len(toks)-1)
		outFrom := min(end-b, max(0, from-1-b))
		logits, err := lm.Decode(toks[b:end], b, outFrom)
		if err != nil {
			return 0, 0, err
		}
		for k := 0; k < end-b-outFrom; k++ {
			pos := b + outFrom + k
			ll += kernels.LogSoftmaxAt(logits[k*v:(k+1)*v], toks[pos+1])
		}
	}
	return ll, len(toks) - from, nil
}
