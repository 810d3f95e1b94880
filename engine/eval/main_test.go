package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// The test binary doubles as a fake evaluation worker (no llama.cpp):
// started with EVOMERGE_FAKE_WORKER=1 it serves the protocol from
// fakeWorker instead of running tests.
func TestMain(m *testing.M) {
	if os.Getenv("EVOMERGE_FAKE_WORKER") == "1" {
		os.Exit(fakeWorker())
	}
	os.Exit(m.Run())
}

// fakeWorker answers every request with an empty result, except a request
// for the model "crash", on which it dies as llama.cpp's aborts do. With
// EVOMERGE_FAKE_STARTS=FILE and EVOMERGE_FAKE_MAX_STARTS=N, the starts
// after the N-th exit at once with a reason on stderr, as a worker does
// that cannot load its backend or allocate its memory.
func fakeWorker() int {
	if file := os.Getenv("EVOMERGE_FAKE_STARTS"); file != "" {
		f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		st, _ := f.Stat()
		f.Write([]byte{'.'})
		f.Close()
		var limit int64
		fmt.Sscan(os.Getenv("EVOMERGE_FAKE_MAX_STARTS"), &limit)
		if st.Size() >= limit {
			fmt.Fprintln(os.Stderr, "ggml_backend_cpu_init: failed to allocate the compute buffer: out of memory")
			return 1
		}
	}
	sc := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for sc.Scan() {
		var req Request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return 2
		}
		if req.Model == "crash" {
			fmt.Fprintln(os.Stderr, "GGML_ASSERT(fake) failed")
			return 134
		}
		result := json.RawMessage(`{}`)
		if req.Op == OpHealth {
			result, _ = json.Marshal(Health{PID: os.Getpid(), GPUs: []string{}, Loaded: []string{}})
		}
		out.Encode(Response{ID: req.ID, Event: EventDone, Result: result})
	}
	return 0
}
