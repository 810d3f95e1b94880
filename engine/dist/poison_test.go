package dist

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
)

// hostEnv makes this test binary a host that joins the URL it holds:
// a job whose recipe says "poison" kills it; the others take 50 ms.
const hostEnv = "EVOMERGE_DIST_TEST_HOST"

func TestMain(m *testing.M) {
	if url := os.Getenv(hostEnv); url != "" {
		os.Exit(poisonHost(url))
	}
	os.Exit(m.Run())
}

type mortal struct{}

func (mortal) Execute(ctx context.Context, job *Job, progress func(string, int, int)) (eval.CandidateReply, error) {
	if strings.Contains(job.Request.Recipe, "poison") {
		os.Exit(3) // the whole host dies, as on an out-of-memory kill
	}
	time.Sleep(50 * time.Millisecond)
	return eval.CandidateReply{Perplexity: &eval.PerplexityReply{}}, nil
}

func poisonHost(url string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	nc, err := DialWorker(url, "poison test host", "")
	if err != nil {
		return 1
	}
	defer nc.Close()
	_ = Join(ctx, nc, JoinOptions{Start: func(context.Context, RunInfo, eval.PrepareRequest) (Started, error) {
		return Started{Exec: mortal{}}, nil
	}})
	return 0
}

// TestPoisonJob: a job that kills every host that takes it (three hosts,
// separate processes) ends failed after MaxDeliver deliveries, with the
// reason, and the other jobs are answered by the host left.
func TestPoisonJob(t *testing.T) {
	_, url := testServer(t)
	c := coordinator(t, url, nil) // AckWait 1 s, MaxDeliver 2
	var hosts []*exec.Cmd
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), hostEnv+"="+url)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, cmd)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o, err := c.Submit(ctx, Job{Key: "poison", ID: "g0-c00", Request: eval.CandidateRequest{Recipe: "poison"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Kind != KindUndelivered || o.Deliveries != 3 || !strings.Contains(o.Err, "handed out 2 times without a result") {
		t.Errorf("poison job: kind %q after %d deliveries (%s); want undelivered after MaxDeliver = 2 runs", o.Kind, o.Deliveries, o.Err)
	}
	for i := range 3 {
		o, err := c.Submit(ctx, Job{Key: fmt.Sprint("good", i), Request: eval.CandidateRequest{Recipe: "linear"}}, nil)
		if err != nil || o.Err != "" {
			t.Fatalf("job after the poison: %v %+v", err, o)
		}
	}
	// Two hosts died of it (exited, not yet waited for: zombies).
	dead := 0
	for _, h := range hosts {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", h.Process.Pid))
		if err == nil && strings.Contains(string(stat), ") Z ") {
			dead++
		}
	}
	if dead != 2 {
		t.Errorf("%d hosts died, want 2 (MaxDeliver)", dead)
	}
}
