package bench

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/evomerge/evomerge/engine/dist"
	"github.com/evomerge/evomerge/engine/eval"
)

// The distributed group measures the job queue itself (engine/dist), with
// a scorer that sleeps a fixed time instead of evaluating, so the numbers
// are the broker's and not llama.cpp's: the time per candidate through an
// embedded server and a host joined over loopback TCP against calling the
// scorer directly, and the throughput with 1, 2 and 3 such hosts against
// the same number of slots called in-process.

// sleepScorer answers every job after d.
type sleepScorer struct{ d time.Duration }

func (s sleepScorer) Execute(ctx context.Context, _ *dist.Job, progress func(string, int, int)) (eval.CandidateReply, error) {
	select {
	case <-ctx.Done():
		return eval.CandidateReply{}, ctx.Err()
	case <-time.After(s.d):
	}
	progress("bench", 1, 1)
	return eval.CandidateReply{Perplexity: &eval.PerplexityReply{Texts: []eval.TextPerplexity{{Name: "bench"}}}}, nil
}

const (
	distSleep = 50 * time.Millisecond
	distJobs  = 24
)

func distBench(ctx context.Context, o *Options) ([]Row, error) {
	text, err := benchText()
	if err != nil {
		return nil, err
	}
	// In-process: the scorer called from n goroutines.
	direct := func(n int) time.Duration {
		t0 := time.Now()
		var wg sync.WaitGroup
		jobs := make(chan int, distJobs)
		for i := range distJobs {
			jobs <- i
		}
		close(jobs)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range jobs {
					_, _ = sleepScorer{distSleep}.Execute(ctx, nil, func(string, int, int) {})
				}
			}()
		}
		wg.Wait()
		return time.Since(t0)
	}
	var rows []Row
	for n := 1; n <= 3; n++ {
		base := direct(n)
		d, err := distLoopback(ctx, o, n, text)
		if err != nil {
			return nil, err
		}
		perMin := func(d time.Duration) float64 { return distJobs / d.Minutes() }
		rows = append(rows, ratioRow("distributed", fmt.Sprintf("candidates through the job queue, %d host(s) joined over loopback TCP (%v scorer)", n, distSleep),
			perMin(d), "candidates/min", perMin(base), "candidates/min in-process, same slots", ""))
		if n == 1 {
			per, basePer := d.Seconds()/distJobs, base.Seconds()/distJobs
			rows = append(rows, ratioRow("distributed", fmt.Sprintf("time per candidate, publish → result, 1 host (%v scorer)", distSleep),
				per*1000, "ms", basePer*1000, "ms calling the scorer", fmt.Sprintf("broker overhead %.1f ms per candidate", (per-basePer)*1000)))
		}
	}
	o.logf("distributed: %d jobs per measurement", distJobs)
	return rows, nil
}

// distLoopback runs distJobs jobs through an embedded server listening on
// loopback, with n hosts each on its own TCP connection, and returns the
// wall time from the first publish to the last result.
func distLoopback(ctx context.Context, o *Options, n int, text eval.Text) (time.Duration, error) {
	store, err := os.MkdirTemp(o.Dir, "evomerge-bench-nats-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(store)
	srv, err := dist.StartServer(dist.ServerOptions{StoreDir: store, Listen: "127.0.0.1:0", Token: "bench"})
	if err != nil {
		return 0, err
	}
	defer srv.Close()
	url := "nats://bench@" + srv.Addr()
	cnc, err := dist.Dial(url, "bench coordinator")
	if err != nil {
		return 0, err
	}
	defer cnc.Close()
	coord, err := dist.OpenCoordinator(ctx, cnc, dist.CoordinatorOptions{Info: dist.RunInfo{Run: fmt.Sprintf("bench%d", n), AckWait: 30 * time.Second, MaxDeliver: 3}})
	if err != nil {
		return 0, err
	}
	defer coord.Close(true)
	hctx, stop := context.WithCancel(ctx)
	var hosts sync.WaitGroup
	defer func() { stop(); hosts.Wait() }()
	for i := range n {
		nc, err := dist.Dial(url, "bench host")
		if err != nil {
			return 0, err
		}
		defer nc.Close()
		hosts.Add(1)
		go func() {
			defer hosts.Done()
			_ = dist.Serve(hctx, nc, coord.Info(), sleepScorer{distSleep}, dist.HostOptions{Name: fmt.Sprintf("bench-%d", i), Slots: 1})
		}()
	}
	// Wait until every host is registered, so that joining is not timed.
	for deadline := time.Now().Add(10 * time.Second); len(coord.Workers()) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("distributed bench: %d of %d hosts registered", len(coord.Workers()), n)
		}
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, distJobs)
	for i := range distJobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := coord.Submit(ctx, dist.Job{Key: fmt.Sprintf("j%d", i), ID: fmt.Sprint(i),
				Request: eval.CandidateRequest{Recipe: fmt.Sprint(i), Texts: []eval.Text{text}}}, nil)
			if err == nil {
				err = out.Ack()
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return d, nil
}
