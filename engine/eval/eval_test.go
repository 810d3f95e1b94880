package eval

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func sampleText(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString([]string{"the cat ", "sat on ", "a mat, ", "and then ", "it slept. "}[i*7%5])
	}
	return b.String()[:n]
}

// TestPerplexityMatchesReference recomputes llama-perplexity's definition
// directly from the fake model's formula.
func TestPerplexityMatchesReference(t *testing.T) {
	text := sampleText(700)
	for _, tc := range []struct {
		nctx, batch, chunks int
		overlap             bool
		from                int // ScoreFrom
	}{{64, 48, 0, false, 0}, {64, 64, 0, false, 0}, {32, 5, 3, false, 0}, {100, 48, 0, false, 0},
		{64, 48, 0, true, 0}, {64, 64, 0, true, 0}, {32, 5, 3, true, 0}, {100, 48, 0, true, 0},
		{64, 48, 0, false, 8}, {64, 64, 0, true, 1}, {32, 5, 3, false, 30}, {100, 48, 0, true, 17}} {
		lm := newFake()
		lm.batch = tc.batch
		var progress []int
		got, err := Perplexity(context.Background(), lm, text, PerplexityOptions{Context: tc.nctx, Chunks: tc.chunks, Overlap: tc.overlap, ScoreFrom: tc.from,
			Progress: func(done, total int) {
				if total != windows(tc.chunks, len(text)+1, tc.nctx) {
					t.Errorf("progress total %d", total)
				}
				progress = append(progress, done)
			}})
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range progress {
			if d != i+1 || len(progress) != got.Chunks {
				t.Fatalf("overlap %v: progress %v, want 1…%d in order", tc.overlap, progress, got.Chunks)
			}
		}
		toks, _ := lm.Tokenize(text, true)
		chunks := len(toks) / tc.nctx
		if tc.chunks > 0 {
			chunks = min(chunks, tc.chunks)
		}
		var sum, sum2 float64
		n := 0
		for c := range chunks {
			w := append([]int(nil), toks[c*tc.nctx:(c+1)*tc.nctx]...)
			w[0] = 1 // BOS
			from := tc.nctx / 2
			if tc.from > 0 {
				from = tc.from
			}
			for j := from; j < tc.nctx-1; j++ {
				prev := -1
				if j > 0 {
					prev = w[j-1]
				}
				lp := refLogProb(w[0], prev, w[j], toks[c*tc.nctx+j+1], lm.vocab, false)
				sum -= lp
				sum2 += lp * lp
				n++
			}
		}
		mean := sum / float64(n)
		want := math.Exp(mean)
		wantErr := math.Sqrt((sum2/float64(n)-mean*mean)/float64(n-1)) * want
		if got.Tokens != n || got.Chunks != chunks {
			t.Errorf("ctx %d: scored %d tokens in %d chunks, want %d in %d", tc.nctx, got.Tokens, got.Chunks, n, chunks)
		}
		if math.Abs(got.Perplexity-want)/want > 1e-6 || math.Abs(got.StdErr-wantErr)/wantErr > 1e-4 {
			t.Errorf("ctx %d batch %d: ppl %v ± %v, want %v ± %v", tc.nctx, tc.batch, got.Perplexity, got.StdErr, want, wantErr)
		}
	}
}

// TestPerplexityWindows: the per-window sums add up to the run's mean; a
// named text scored on chosen windows gives those windows' values of the
// full run, in the order asked, and other texts keep Chunks; bad indices
// are errors.
func TestPerplexityWindows(t *testing.T) {
	text := Text{Name: "a", Content: sampleText(700)}
	ctx := context.Background()
	full, err := PerplexityText(ctx, newFake(), text, PerplexityOptions{Context: 32})
	if err != nil {
		t.Fatal(err)
	}
	if full.Available != 21 || len(full.Windows) != 21 {
		t.Fatalf("%d windows of %d available, want 21 of 21", len(full.Windows), full.Available)
	}
	var sum float64
	n := 0
	for i, w := range full.Windows {
		if w.Index != i || w.Tokens != 15 {
			t.Errorf("window %d: %+v", i, w)
		}
		sum += w.NLL
		n += w.Tokens
	}
	if n != full.Tokens || math.Abs(sum/float64(n)-full.NLL) > 1e-12 {
		t.Errorf("windows sum to %v over %d tokens; the run says %v over %d", sum/float64(n), n, full.NLL, full.Tokens)
	}
	pick := []int{17, 3, 9}
	got, err := PerplexityText(ctx, newFake(), text, PerplexityOptions{Context: 32, Windows: map[string][]int{"a": pick}})
	if err != nil {
		t.Fatal(err)
	}
	sum, n = 0, 0
	for k, w := range got.Windows {
		if w != full.Windows[pick[k]] {
			t.Errorf("window %d alone: %+v, in the full run %+v", pick[k], w, full.Windows[pick[k]])
		}
		sum += w.NLL
		n += w.Tokens
	}
	if got.Chunks != 3 || math.Abs(math.Exp(sum/float64(n))-got.Perplexity) > 1e-9*got.Perplexity {
		t.Errorf("chosen windows: %d chunks, ppl %v, want 3, %v", got.Chunks, got.Perplexity, math.Exp(sum/float64(n)))
	}
	other, err := PerplexityText(ctx, newFake(), Text{Name: "b", Content: text.Content}, PerplexityOptions{Context: 32, Chunks: 2, Windows: map[string][]int{"a": pick}})
	if err != nil || other.Chunks != 2 {
		t.Errorf("a text not named: %d chunks, %v; want the first 2", other.Chunks, err)
	}
	for _, bad := range [][]int{{21}, {-1}, {4, 4}, {}} {
		if _, err := PerplexityText(ctx, newFake(), text, PerplexityOptions{Context: 32, Windows: map[string][]int{"a": bad}}); !errors.Is(err, ErrBadWindow) {
			t.Errorf("windows %v: %v, want ErrBadWindow", bad, err)
		}
	}
}

// windows is the number of windows of nctx tokens in n tokens, at most chunks
// (0: all).
func windows(chunks, n, nctx int) int {
	if chunks > 0 {
		return min(chunks, n/nctx)
	}
	return n / nctx
}

// TestPerplexityOverlapIsExact: scoring window k while window k+1 decodes
// adds the same per-window sums in the same order, so the result is the
// serial one bit for bit; a cancelled context stops it.
func TestPerplexityOverlapIsExact(t *testing.T) {
	text := sampleText(2000)
	for _, batch := range []int{64, 20} {
		a, b := newFake(), newFake()
		a.batch, b.batch = batch, batch
		serial, err := Perplexity(context.Background(), a, text, PerplexityOptions{Context: 64})
		if err != nil {
			t.Fatal(err)
		}
		overlap, err := Perplexity(context.Background(), b, text, PerplexityOptions{Context: 64, Overlap: true})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(serial, overlap) || serial.Chunks < 10 {
			t.Fatalf("batch %d: serial %+v, overlapped %+v", batch, serial, overlap)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Perplexity(ctx, newFake(), text, PerplexityOptions{Context: 64, Overlap: true, Progress: func(done, _ int) {
		if done == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestPerplexityErrors(t *testing.T) {
	lm := newFake()
	if _, err := Perplexity(context.Background(), lm, "short", PerplexityOptions{Context: 64}); !errors.Is(err, ErrTextTooShort) {
		t.Errorf("short text: %v", err)
	}
	if _, err := Perplexity(context.Background(), lm, sampleText(1000), PerplexityOptions{Context: 512}); err == nil {
		t.Error("context larger than the model's accepted")
	}
	for _, from := range []int{-1, 63, 64, 1000} {
		if _, err := Perplexity(context.Background(), lm, sampleText(1000), PerplexityOptions{Context: 64, ScoreFrom: from}); err == nil || !strings.Contains(err.Error(), "outside [1, 62]") {
			t.Errorf("scoring from %d of 64: %v", from, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Perplexity(ctx, lm, sampleText(1000), PerplexityOptions{Context: 64}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestGenerateGreedy(t *testing.T) {
	lm := newFake()
	var streamed strings.Builder
	res, err := Generate(context.Background(), lm, "ab", GenerateOptions{MaxTokens: 10}, func(s string) { streamed.WriteString(s) })
	if err != nil {
		t.Fatal(err)
	}
	// Expected: argmax of the formula, step by step.
	toks, _ := lm.Tokenize("ab", true)
	var want []int
	for range 10 {
		prev, cur := toks[len(toks)-2], toks[len(toks)-1]
		best := -1
		for j := range lm.vocab {
			if j == 2 {
				continue
			}
			if best < 0 || fakeLogit(1, prev, cur, j) > fakeLogit(1, prev, cur, best) {
				best = j
			}
		}
		want = append(want, best)
		toks = append(toks, best)
	}
	if len(res.tokenIDs) != 10 {
		t.Fatalf("generated %d tokens", len(res.tokenIDs))
	}
	for i := range want {
		if res.tokenIDs[i] != want[i] {
			t.Fatalf("token %d = %d, want %d (all %v vs %v)", i, res.tokenIDs[i], want[i], res.tokenIDs, want)
		}
	}
	if streamed.String() != res.Text || res.StopReason != "length" {
		t.Errorf("streamed %q, text %q, stop %q", streamed.String(), res.Text, res.StopReason)
	}
	// Seeded sampling is reproducible.
	opt := GenerateOptions{SamplingOptions: DefaultSampling(), MaxTokens: 20}
	a, _ := Generate(context.Background(), lm, "ab", opt, nil)
	b, _ := Generate(context.Background(), lm, "ab", opt, nil)
	opt.Seed++
	c, _ := Generate(context.Background(), lm, "ab", opt, nil)
	if a.Text != b.Text {
		t.Error("same seed, different text")
	}
	if a.Text == c.Text {
		t.Error("different seed, same text (possible but unlikely)")
	}
}

func TestGenerateStops(t *testing.T) {
	lm := newFake()
	lm.ctx = 12
	res, err := Generate(context.Background(), lm, "abc", GenerateOptions{MaxTokens: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StopReason != "context" || res.PromptTokens+res.Tokens != 12 {
		t.Errorf("stop %q after %d+%d tokens", res.StopReason, res.PromptTokens, res.Tokens)
	}
	lm = newFake()
	lm.eos = true
	// With EOS allowed some continuation ends with it; find that it stops.
	found := false
	for seed := range uint64(50) {
		opt := GenerateOptions{SamplingOptions: SamplingOptions{Temperature: 2, Seed: seed}, MaxTokens: 60}
		r, err := Generate(context.Background(), lm, "x", opt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.StopReason == "eos" {
			found = true
			break
		}
	}
	if !found {
		t.Error("no generation stopped at EOS")
	}
	if _, err := Generate(context.Background(), lm, "x", GenerateOptions{SamplingOptions: SamplingOptions{Temperature: -1}}, nil); err == nil {
		t.Error("negative temperature accepted")
	}
}

func TestCompleteUTF8(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"abc", 3},
		{"a\xc3", 1},         // first byte of é
		{"a\xc3\xa9", 3},     // é complete
		{"\xe2\x96", 0},      // 2 of 3 bytes of ▁
		{"x\xe2\x96\x81", 4}, // ▁ complete
		{"\xf0\x9f\x98", 0},  // 3 of 4 bytes of an emoji
		{"\xff", 1},          // invalid byte: passed through
	}
	for _, tt := range tests {
		if got := completeUTF8([]byte(tt.in)); got != tt.want {
			t.Errorf("completeUTF8(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestSampler(t *testing.T) {
	logits := []float32{0.5, 2, 1, -1, 1.9}
	if got := NewSampler(SamplingOptions{}).Sample(logits, nil); got != 1 {
		t.Errorf("greedy picked %d", got)
	}
	// Repeat penalty 2 on token 1 (positive logit → halved to 1): token 4 wins.
	if got := NewSampler(SamplingOptions{RepeatPenalty: 2}).Sample(logits, []int{1}); got != 4 {
		t.Errorf("penalised greedy picked %d", got)
	}
	if got := NewSampler(SamplingOptions{Temperature: 5, TopK: 1, Seed: 9}).Sample(logits, nil); got != 1 {
		t.Errorf("top-k 1 picked %d", got)
	}
	// Frequencies match softmax(logits/T) with no truncation.
	const n = 40000
	s := NewSampler(SamplingOptions{Temperature: 1.5, Seed: 3})
	counts := make([]int, len(logits))
	for range n {
		counts[s.Sample(logits, nil)]++
	}
	var z float64
	for _, l := range logits {
		z += math.Exp(float64(l) / 1.5)
	}
	for i, l := range logits {
		p := math.Exp(float64(l)/1.5) / z
		sd := math.Sqrt(p * (1 - p) / n)
		if got := float64(counts[i]) / n; math.Abs(got-p) > 5*sd {
			t.Errorf("token %d: frequency %.4f, want %.4f ± %.4f", i, got, p, 5*sd)
		}
	}
	// top-p 0.5 at T=1: p(1)≈0.38, p(4)≈0.35 → nucleus {1, 4}; nothing else appears.
	s = NewSampler(SamplingOptions{Temperature: 1, TopP: 0.5, Seed: 4})
	for range 2000 {
		if got := s.Sample(logits, nil); got != 1 && got != 4 {
			t.Fatalf("top-p sampled %d outside the nucleus", got)
		}
	}
	// min-p 0.5: keeps tokens with p ≥ 0.5·p_max, i.e. 1, 4 (0.35/0.38) and not 2 (0.14).
	s = NewSampler(SamplingOptions{Temperature: 1, MinP: 0.5, Seed: 5})
	for range 2000 {
		if got := s.Sample(logits, nil); got != 1 && got != 4 {
			t.Fatalf("min-p sampled %d", got)
		}
	}
}

func TestContinuationLogLikelihood(t *testing.T) {
	lm := newFake()
	ll, n, err := ContinuationLogLikelihood(lm, "ab", "cd")
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := lm.Tokenize("abcd", true) // BOS a b c d
	want := refLogProb(1, toks[1], toks[2], toks[3], lm.vocab, false) + refLogProb(1, toks[2], toks[3], toks[4], lm.vocab, false)
	if n != 2 || math.Abs(ll-want) > 1e-5 {
		t.Errorf("got %v over %d tokens, want %v over 2", ll, n, want)
	}
	// Across batch boundaries.
	lm.batch = 3
	ll2, _, err := ContinuationLogLikelihood(lm, "ab", "cd")
	if err != nil || math.Abs(ll2-want) > 1e-5 {
		t.Errorf("batched: %v, %v", ll2, err)
	}
}

func TestScoreTasks(t *testing.T) {
	lm := newFake()
	// For each context, make the answer the likeliest single-byte choice
	// according to the reference formula; accuracy must be 1, and 0 when
	// the answer index points at the least likely choice.
	var good, bad []Task
	for _, c := range []string{"ab", "hello", "xyz", "the cat"} {
		toks, _ := lm.Tokenize(c, true)
		prev, cur := toks[len(toks)-2], toks[len(toks)-1]
		choices := []string{"a", "m", "q", "z"}
		bestI, worstI := 0, 0
		for i, ch := range choices {
			tok := 3 + int(ch[0])%(lm.vocab-3)
			lp := refLogProb(1, prev, cur, tok, lm.vocab, false)
			if lp > refLogProb(1, prev, cur, 3+int(choices[bestI][0])%(lm.vocab-3), lm.vocab, false) {
				bestI = i
			}
			if lp < refLogProb(1, prev, cur, 3+int(choices[worstI][0])%(lm.vocab-3), lm.vocab, false) {
				worstI = i
			}
		}
		good = append(good, Task{Context: c, Choices: choices, Answer: bestI})
		bad = append(bad, Task{Context: c, Choices: choices, Answer: worstI})
	}
	res, err := ScoreTasks(context.Background(), lm, good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accuracy != 1 || res.AccuracyNorm != 1 || res.Tasks != 4 {
		t.Errorf("good answers: %+v", res)
	}
	res, _ = ScoreTasks(context.Background(), lm, bad, nil)
	if res.Accuracy != 0 {
		t.Errorf("worst answers: %+v", res)
	}
}

func TestReadTasks(t *testing.T) {
	good := `{"context": "2+2=", "choices": ["3", "4"], "answer": 1}

{"context": "sky is", "choices": ["blue", "green", "red"], "answer": 0}
`
	tasks, err := ReadTasks(strings.NewReader(good))
	if err != nil || len(tasks) != 2 || tasks[1].Choices[2] != "red" {
		t.Fatalf("got %v, %v", tasks, err)
	}
	bad := `{"context": "a", "choices": ["x"], "answer": 0}
{"context": "a", "choices": ["x", "y"], "answer": 2}
{"context": "", "choices": ["x", "y"], "answer": 0}
{"context": "a", "choices": ["x", "y"], "answer": 0, "extra": 1}
not json`
	_, err = ReadTasks(strings.NewReader(bad))
	if err == nil {
		t.Fatal("bad tasks accepted")
	}
	for _, want := range []string{"5 bad task lines", "line 1: 1 choices", "line 2: answer 2", "line 3: empty context", `line 4: json: unknown field "extra"`, "line 5:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestDistinct2(t *testing.T) {
	tests := []struct {
		text string
		want float64
	}{
		{"the cat sat on the mat", 1},
		{"the the the the the", 0.25},
		{"a b a b a b", 2.0 / 5},
		{"one", 1},
	}
	for _, tt := range tests {
		if got := Distinct2(strings.Fields(tt.text)); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("Distinct2(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
	o := DefaultCoherence()
	if fluency(4, o) != 1 || fluency(400, o) != 0 || fluency(1e6, o) != 0 || math.Abs(fluency(40, o)-0.5) > 1e-12 {
		t.Errorf("fluency mapping wrong: %v %v %v", fluency(4, o), fluency(40, o), fluency(400, o))
	}
}

func TestCrashReason(t *testing.T) {
	tests := []struct{ log, want string }{
		{"load: ok\n/src/ggml-cuda/fattn.cu:136: fatal error\nSIGABRT: abort\nPC=0x1 m=3\n\nrax 0x0\ngs 0x0\n", "/src/ggml-cuda/fattn.cu:136: fatal error; SIGABRT: abort"},
		{"x\nGGML_ASSERT(ne % 32 == 0) failed\n", "GGML_ASSERT(ne % 32 == 0) failed"},
		{"panic: runtime error: index out of range\n\ngoroutine 1 [running]:\n", "panic: runtime error: index out of range"},
		{"model loaded\n................\n", "model loaded"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := crashReason(tt.log); got != tt.want {
			t.Errorf("crashReason(%q) = %q, want %q", tt.log, got, tt.want)
		}
	}
}
