package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/zoo"
)

// TestGradientCandidate: a gradient candidate's perplexity equals the
// llama.cpp-scored candidate's on the same windows (1e-3 relative), and
// its derivative in the first expert's coefficient of one layer's MLP equals the
// central difference of the mean log-perplexity of two candidates merged
// in place and scored by llama.cpp; a gradient with a coherence objective,
// or of a recipe that is not a sum of task vectors, is an input error.
func TestGradientCandidate(t *testing.T) {
	s := &server{opt: Options{Threads: 2, MaxModels: 2}, out: json.NewEncoder(io.Discard)}
	defer s.unloadAll()
	if _, err := s.prepare(&eval.Request{Prepare: &eval.PrepareRequest{Sources: zooSources(t), Scratch: t.TempDir()}}); err != nil {
		t.Fatal(err)
	}
	defer func() { s.res.close() }()
	ex := zoo.Experts()
	var texts []eval.Text
	windows := map[string][]int{}
	for _, e := range ex {
		text, err := zoo.Text(e, "validation")
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, eval.Text{Name: e, Content: text})
		windows[e] = []int{1, 7}
	}
	// The first expert's MLP of layer 2 weighs w, everything else 1/3.
	const filter = "blk.2.ffn_"
	recipe := func(w float64) *merge.Recipe {
		r := &merge.Recipe{Method: "task_arithmetic", Base: zoo.Base}
		for i, e := range ex {
			v := merge.Scalar(1.0 / 3)
			if i == 0 {
				v = merge.Value{Filters: []merge.Filtered{{Filter: filter, Anchors: []float64{w}}, {Anchors: []float64{1.0 / 3}}}}
			}
			r.Models = append(r.Models, merge.ModelRef{Model: e, Params: merge.Params{"weight": v}})
		}
		return r
	}
	ctx := context.Background()
	score := func(r *merge.Recipe, gradient bool) eval.CandidateReply {
		t.Helper()
		out, err := s.candidate(ctx, &eval.Request{Op: eval.OpCandidate, Candidate: &eval.CandidateRequest{Recipe: encodeRecipe(t, r), Texts: texts,
			Perplexity: &eval.PerplexityOptions{Context: 256, Windows: windows}, Gradient: gradient}})
		if err != nil {
			t.Fatal(err)
		}
		return out.(eval.CandidateReply)
	}
	meanLog := func(r eval.CandidateReply) float64 {
		var m float64
		for _, tp := range r.Perplexity.Texts {
			m += math.Log(tp.Perplexity) / float64(len(r.Perplexity.Texts))
		}
		return m
	}
	const w, h = 1.0 / 3, 0.1
	g := score(recipe(w), true)
	ref := score(recipe(w), false)
	if g.Path != eval.PathGradient || ref.Path != eval.PathInPlace {
		t.Fatalf("paths %s and %s", g.Path, ref.Path)
	}
	for i, tp := range g.Perplexity.Texts {
		want := ref.Perplexity.Texts[i]
		if math.Abs(tp.Perplexity/want.Perplexity-1) > 1e-3 || tp.Chunks != 2 || tp.Windows[1].Index != 7 {
			t.Errorf("%s: gradient graph %.4f on %d windows, llama.cpp %.4f", tp.Name, tp.Perplexity, tp.Chunks, want.Perplexity)
		}
	}
	var d float64
	for k, name := range g.Gradient.Tensors {
		if merge.FilterMatches(filter, name) {
			d += g.Gradient.D[k][0]
		}
	}
	fd := (meanLog(score(recipe(w+h), false)) - meanLog(score(recipe(w-h), false))) / (2 * h)
	t.Logf("d mean log ppl / d c(%s, %s): gradient %.5f, llama.cpp central difference %.5f; %d tensors", filter, ex[0], d, fd, len(g.Gradient.Tensors))
	if !(math.Abs(d-fd) <= 0.05*math.Abs(fd)) || fd == 0 {
		t.Errorf("gradient %.5f, central difference %.5f", d, fd)
	}

	for _, c := range []struct {
		name string
		req  eval.CandidateRequest
	}{
		{"coherence", eval.CandidateRequest{Recipe: encodeRecipe(t, recipe(w)), Texts: texts, Gradient: true, Coherence: &eval.CoherenceOptions{}}},
		{"ties", eval.CandidateRequest{Recipe: encodeRecipe(t, &merge.Recipe{Method: "ties", Base: zoo.Base, Models: recipe(w).Models}), Texts: texts, Gradient: true}},
	} {
		_, err := s.candidate(ctx, &eval.Request{Op: eval.OpCandidate, Candidate: &c.req})
		if !errors.As(err, new(inputError)) {
			t.Errorf("%s: %v, want an input error", c.name, err)
		}
	}
}
