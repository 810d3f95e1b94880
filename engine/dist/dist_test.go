package dist

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/evomerge/evomerge/engine/eval"
)

// scorer is a test executor: the "perplexity" of a job is the length of
// its recipe, a job whose recipe says poison crashes its worker, and every
// run is counted by key.
type scorer struct {
	mu   sync.Mutex
	runs map[string]int
	// afterProgress, when set, runs after the job's progress is reported.
	afterProgress func(*Job)
}

func (s *scorer) Execute(ctx context.Context, job *Job, progress func(string, int, int)) (eval.CandidateReply, error) {
	s.mu.Lock()
	s.runs[job.Key]++
	s.mu.Unlock()
	progress("t", 1, 1)
	if s.afterProgress != nil {
		s.afterProgress(job)
	}
	if strings.Contains(job.Request.Recipe, "poison") {
		return eval.CandidateReply{}, &eval.CrashError{Op: "candidate", Model: job.ID, Status: "signal: aborted"}
	}
	if strings.Contains(job.Request.Recipe, "bad") {
		return eval.CandidateReply{}, &eval.WorkerError{Op: "candidate", Kind: eval.KindInput, Msg: "bad recipe"}
	}
	var texts []eval.TextPerplexity
	for _, t := range job.Request.Texts {
		texts = append(texts, eval.TextPerplexity{Name: t.Name, PerplexityResult: eval.PerplexityResult{Perplexity: float64(len(job.Request.Recipe) + len(t.Content))}})
	}
	return eval.CandidateReply{Perplexity: &eval.PerplexityReply{Texts: texts}}, nil
}

// testServer is an embedded server on a random loopback port.
func testServer(t *testing.T) (*Server, string) {
	t.Helper()
	srv, err := StartServer(ServerOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, "nats://tok@" + srv.Addr()
}

func dial(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := Dial(url, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func coordinator(t *testing.T, url string, changes chan<- string) *Coordinator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := OpenCoordinator(ctx, dial(t, url), CoordinatorOptions{
		Info: RunInfo{Run: "r1", AckWait: time.Second, MaxDeliver: 2},
		Workers: func(_ []WorkerInfo, change string) {
			if change != "" && changes != nil {
				changes <- change
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(true) })
	return c
}

// TestDelivery: jobs over loopback TCP to two hosts — every job is run
// and answered once, texts travel by hash, and a worker error or a
// crashed worker process fails its job at once, with the reason.
func TestDelivery(t *testing.T) {
	_, url := testServer(t)
	c := coordinator(t, url, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Progress travels on core NATS beside the results, so a job's may be
	// handled after its result (and dropped); the first job waits until
	// some progress has reached the coordinator, which shows that progress
	// of a job in flight arrives.
	var progressed atomic.Int32
	s := &scorer{runs: map[string]int{}, afterProgress: func(job *Job) {
		if job.Key != "k0" {
			return
		}
		for deadline := time.Now().Add(10 * time.Second); progressed.Load() == 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
	}}
	var wg sync.WaitGroup
	hctx, stop := context.WithCancel(ctx)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Serve(hctx, dial(t, url), c.Info(), s, HostOptions{Name: fmt.Sprintf("h%d", i), Slots: 2}); err != nil {
				t.Error(err)
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()

	text := eval.Text{Name: "story", Content: strings.Repeat("once upon a time ", 100)}
	recipes := []string{"linear a", "linear b", "ties a b", "dare", "bad", "poison"}
	type answer struct {
		o   *Outcome
		err error
	}
	answers := make([]answer, len(recipes))
	var sw sync.WaitGroup
	for i, r := range recipes {
		sw.Add(1)
		go func() {
			defer sw.Done()
			o, err := c.Submit(ctx, Job{Key: fmt.Sprintf("k%d", i), ID: r, Request: eval.CandidateRequest{Recipe: r, Texts: []eval.Text{text}}},
				func(string, int, int) { progressed.Add(1) })
			answers[i] = answer{o, err}
		}()
	}
	sw.Wait()
	if progressed.Load() == 0 {
		t.Error("no progress reached the coordinator")
	}
	for i, a := range answers {
		r := recipes[i]
		if a.err != nil {
			t.Fatalf("%s: %v", r, a.err)
		}
		switch r {
		case "bad":
			if a.o.Kind != eval.KindInput || s.runs["k4"] != 1 {
				t.Errorf("bad: kind %q after %d runs, want input after 1", a.o.Kind, s.runs["k4"])
			}
		case "poison":
			if a.o.Kind != KindCrash || !strings.Contains(a.o.Err, "crashed") || s.runs["k5"] != 1 {
				t.Errorf("poison: kind %q (%s) after %d runs, want crash after 1", a.o.Kind, a.o.Err, s.runs["k5"])
			}
		default:
			want := float64(len(r) + len(text.Content))
			if a.o.Err != "" || a.o.Reply.Perplexity == nil || a.o.Reply.Perplexity.Texts[0].Perplexity != want {
				t.Errorf("%s: %+v, want perplexity %v", r, a.o.Result, want)
			}
			if n := s.runs[fmt.Sprintf("k%d", i)]; n != 1 {
				t.Errorf("%s ran %d times", r, n)
			}
		}
		if err := a.o.Ack(); err != nil {
			t.Error(err)
		}
	}
	// A job published again with a key already answered is dropped by the
	// stream's deduplication: no host runs it a second time.
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	defer scancel()
	if _, err := c.Submit(sctx, Job{Key: "k0", Request: eval.CandidateRequest{Recipe: "linear a"}}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a duplicate job was answered: %v", err)
	}
	if s.runs["k0"] != 1 {
		t.Errorf("a duplicate job ran: %d runs", s.runs["k0"])
	}
}

// TestRefusedWorker: a worker of another evomerge version says so in one
// line, the coordinator reports the same line, and no job reaches it; a
// matching worker then takes the job.
func TestRefusedWorker(t *testing.T) {
	_, url := testServer(t)
	changes := make(chan string, 16)
	c := coordinator(t, url, changes)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := &scorer{runs: map[string]int{}}
	var logged []string
	var mu sync.Mutex
	go Join(ctx, dial(t, url), JoinOptions{HostOptions: HostOptions{Name: "old", Logf: func(f string, a ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(f, a...))
		mu.Unlock()
	}}, Evomerge: "v0.0.1", Llama: "v0.0.1",
		Start: func(context.Context, RunInfo, eval.PrepareRequest) (Started, error) {
			return Started{Exec: old}, nil
		}})
	select {
	case ch := <-changes:
		if !strings.Contains(ch, "worker old refused: evomerge v0.0.1") && !strings.Contains(ch, "this worker is v0.0.1") {
			t.Errorf("coordinator reported %q", ch)
		}
	case <-ctx.Done():
		t.Fatal("the refusal never reached the coordinator")
	}
	mu.Lock()
	if len(logged) != 1 || !strings.Contains(logged[0], "refused: evomerge") {
		t.Errorf("worker logged %q, want one refusal line", logged)
	}
	mu.Unlock()
	good := &scorer{runs: map[string]int{}}
	go Join(ctx, dial(t, url), JoinOptions{HostOptions: HostOptions{Name: "good"},
		Start: func(context.Context, RunInfo, eval.PrepareRequest) (Started, error) {
			return Started{Exec: good}, nil
		}})
	o, err := c.Submit(ctx, Job{Key: "k", Request: eval.CandidateRequest{Recipe: "linear"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Worker != "good" || len(old.runs) != 0 {
		t.Errorf("job ran on %s; the refused worker ran %d jobs", o.Worker, len(old.runs))
	}
}
