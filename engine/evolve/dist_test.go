package evolve

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/dist"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/merge"
)

// The distributed tests run the coordinator (Run with hardware.workers =
// 0 and a loopback listener) against hosts that are separate processes:
// this test binary started again as `worker --join` would be, scoring
// with the landscape instead of llama.cpp (evaluation is not under test
// here; cli's TestDistributedRunOnTheZoo runs the real thing).
const (
	hostEnv  = "EVOMERGE_TEST_HOST"        // join this URL as a host
	hostDir  = "EVOMERGE_TEST_HOST_DIR"    // where hosts note what they run
	coordEnv = "EVOMERGE_TEST_COORDINATOR" // run the coordinator of this config file
)

// serveIfDistRole runs this test binary as a host or a coordinator when
// the environment says so (TestMain).
func serveIfDistRole() {
	switch {
	case os.Getenv(hostEnv) != "":
		os.Exit(testHost(os.Getenv(hostEnv), os.Getenv(hostDir)))
	case os.Getenv(coordEnv) != "":
		os.Exit(testCoordinator(os.Getenv(coordEnv)))
	}
}

// landscapeHost scores jobs with the landscape, 150 ms each. While a job
// runs its key is in busy-PID; every job run is a line of ran-PID.
type landscapeHost struct{ dir string }

func (h landscapeHost) Execute(ctx context.Context, job *dist.Job, progress func(string, int, int)) (eval.CandidateReply, error) {
	pid := os.Getpid()
	busy := filepath.Join(h.dir, fmt.Sprintf("busy-%d", pid))
	_ = os.WriteFile(busy, []byte(job.Key), 0o644)
	defer os.Remove(busy)
	r, err := merge.ParseRecipe(job.Request.Recipe)
	if err != nil {
		return eval.CandidateReply{}, &eval.WorkerError{Op: "candidate", Kind: eval.KindInput, Msg: err.Error()}
	}
	select {
	case <-ctx.Done():
		return eval.CandidateReply{}, ctx.Err()
	case <-time.After(150 * time.Millisecond):
	}
	s, _ := landscape(ctx, r)
	progress("synthetic", 1, 1)
	f, err := os.OpenFile(filepath.Join(h.dir, fmt.Sprintf("ran-%d", pid)), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintln(f, job.Key)
		f.Close()
	}
	return eval.CandidateReply{Perplexity: &eval.PerplexityReply{Texts: []eval.TextPerplexity{
		{Name: "synthetic", PerplexityResult: eval.PerplexityResult{Perplexity: math.Exp(s.MeanLogPPL)}}}}}, nil
}

func testHost(url, dir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	nc, err := dist.DialWorker(url, "test host", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer nc.Close()
	err = dist.Join(ctx, nc, dist.JoinOptions{HostOptions: dist.HostOptions{Slots: 1},
		Start: func(context.Context, dist.RunInfo, eval.PrepareRequest) (dist.Started, error) {
			return dist.Started{Exec: landscapeHost{dir}}, nil
		}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func testCoordinator(path string) int {
	cfg, err := config.Load(path)
	if err == nil {
		_, err = Run(context.Background(), cfg, Options{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// freePort is a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// distConfig is testConfig evaluated only by joined hosts on port.
func distConfig(t *testing.T, port int) config.Config {
	cfg := testConfig(t)
	cfg.Evolution.Population = 6
	cfg.Evolution.Generations = 4
	cfg.Evolution.Patience = 0
	cfg.Evaluation.TestTexts = nil
	cfg.Hardware.Workers = 0
	cfg.Distributed.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Distributed.Token = "s3cret"
	cfg.Distributed.AckWaitSeconds = 1
	return cfg
}

// startProc starts this test binary in a role; it is killed at cleanup.
func startProc(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func startHost(t *testing.T, port int, dir string) *exec.Cmd {
	return startProc(t, fmt.Sprintf("%s=nats://s3cret@127.0.0.1:%d", hostEnv, port), hostDir+"="+dir)
}

func runBounded(t *testing.T, cfg config.Config, opt Options) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// historyKeys counts each key's lines in a run's history.jsonl.
func historyKeys(t *testing.T, dir string) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, historyFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		keys[r.Key]++
	}
	return keys
}

func sameResult(t *testing.T, what string, got, want *Result) {
	t.Helper()
	// Keys differ between runs (they hash the sources' paths, each run's
	// own copies); the candidate, its recipe summary and fitness do not.
	if got.Best.ID != want.Best.ID || got.Best.Summary != want.Best.Summary || got.BestFitness != want.BestFitness || got.Evaluations != want.Evaluations {
		t.Errorf("%s: best %s (%s) %.6f after %d evaluations; one worker: %s (%s) %.6f after %d", what,
			got.Best.ID, got.Best.Summary, got.BestFitness, got.Evaluations, want.Best.ID, want.Best.Summary, want.BestFitness, want.Evaluations)
	}
}

func onceEach(t *testing.T, what, dir string, evaluations int) {
	t.Helper()
	keys := historyKeys(t, dir)
	for k, n := range keys {
		if n != 1 {
			t.Errorf("%s: %s is in history.jsonl %d times", what, k, n)
		}
	}
	if len(keys) != evaluations {
		t.Errorf("%s: history.jsonl holds %d candidates, the run evaluated %d", what, len(keys), evaluations)
	}
}

// waitFor polls cond every 20 ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

func lines(path string) []string {
	raw, _ := os.ReadFile(path)
	return strings.Fields(string(raw))
}

// TestDistributedWorkers: hosts as separate processes on loopback. Three
// hosts, one SIGKILLed in the middle of a job: the job is redelivered,
// every candidate is in history.jsonl once, and the result equals a
// one-host run with the same seed; a host that joins mid-run gets work.
func TestDistributedWorkers(t *testing.T) {
	port := freePort(t)
	one := distConfig(t, port)
	dir := t.TempDir()
	startHost(t, port, dir)
	want := runBounded(t, one, Options{})
	onceEach(t, "one host", one.Output.Dir, want.Evaluations)

	// The same on an existing server (distributed.server) instead of the
	// embedded one.
	srv, err := dist.StartServer(dist.ServerOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ext := distConfig(t, 0)
	ext.Distributed.Listen, ext.Distributed.Token = "", ""
	ext.Distributed.Server = "nats://s3cret@" + srv.Addr()
	startProc(t, hostEnv+"="+ext.Distributed.Server, hostDir+"="+t.TempDir())
	sameResult(t, "existing server", runBounded(t, ext, Options{}), want)

	port = freePort(t)
	cfg := distConfig(t, port)
	dir = t.TempDir()
	hosts := map[int]*exec.Cmd{}
	for range 3 {
		c := startHost(t, port, dir)
		hosts[c.Process.Pid] = c
	}
	type killed struct {
		pid int
		key string
	}
	victim := make(chan killed, 1)
	joiner := make(chan int, 1)
	go func() {
		// Once the run is under way, kill a host that is running a job,
		// then start another.
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			entries, _ := filepath.Glob(filepath.Join(dir, "ran-*"))
			n := 0
			for _, e := range entries {
				n += len(lines(e))
			}
			if n < 4 {
				continue
			}
			busy, _ := filepath.Glob(filepath.Join(dir, "busy-*"))
			for _, b := range busy {
				pid, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(b), "busy-"))
				key, err := os.ReadFile(b)
				if hosts[pid] == nil || err != nil || len(key) == 0 {
					continue
				}
				_ = syscall.Kill(pid, syscall.SIGKILL)
				victim <- killed{pid, string(key)}
				joiner <- startHost(t, port, dir).Process.Pid
				return
			}
		}
		close(victim)
	}()
	got := runBounded(t, cfg, Options{})
	v, ok := <-victim
	if !ok {
		t.Fatal("no host was killed mid-job")
	}
	sameResult(t, "three hosts, one killed", got, want)
	onceEach(t, "three hosts, one killed", cfg.Output.Dir, got.Evaluations)
	if historyKeys(t, cfg.Output.Dir)[v.key] != 1 {
		t.Errorf("the killed host's job %s is not in history.jsonl", v.key)
	}
	redone := false
	entries, _ := filepath.Glob(filepath.Join(dir, "ran-*"))
	for _, e := range entries {
		if !strings.HasSuffix(e, fmt.Sprint(v.pid)) && strings.Contains(strings.Join(lines(e), " "), v.key) {
			redone = true
		}
	}
	if !redone {
		t.Errorf("the job of the killed host %d was not run by another host", v.pid)
	}
	if late := <-joiner; len(lines(filepath.Join(dir, fmt.Sprintf("ran-%d", late)))) == 0 {
		t.Error("the host that joined mid-run got no job")
	}
}

// TestDistributedCoordinatorResume: the coordinator (a separate process)
// is SIGKILLed mid-run while hosts work; resumed on the same directory and
// port it reaches the result of an uninterrupted run.
func TestDistributedCoordinatorResume(t *testing.T) {
	port := freePort(t)
	one := distConfig(t, port)
	startHost(t, port, t.TempDir())
	startHost(t, port, t.TempDir())
	want := runBounded(t, one, Options{})

	port = freePort(t)
	cfg := distConfig(t, port)
	raw, err := cfg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "run.toml")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	coord := startProc(t, coordEnv+"="+path)
	startHost(t, port, t.TempDir())
	startHost(t, port, t.TempDir())
	waitFor(t, 60*time.Second, "6 candidates in history.jsonl", func() bool {
		raw, _ := os.ReadFile(filepath.Join(cfg.Output.Dir, historyFile))
		return strings.Count(string(raw), "\n") >= 6
	})
	_ = coord.Process.Kill()
	_ = coord.Wait()
	if _, err := os.Stat(filepath.Join(cfg.Output.Dir, "summary.json")); err == nil {
		t.Fatal("the coordinator finished before it was killed")
	}
	got := runBounded(t, cfg, Options{Resume: true})
	sameResult(t, "coordinator killed and resumed", got, want)
	onceEach(t, "coordinator killed and resumed", cfg.Output.Dir, got.Evaluations)
}
