package eval

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Why child processes: llama.cpp aborts the whole process on internal
// assertion failures (a malformed model can trigger one), GPU memory is only
// reliably returned when a process exits, and killing a process is the one
// way to cancel a decode in flight. A Pool therefore runs each evaluation in
// an `evomerge-tui worker` child speaking the protocol in protocol.go; a
// crash costs one worker, which is replaced, and the caller gets a
// *CrashError naming the model.

// PoolOptions configure a worker pool.
type PoolOptions struct {
	Workers int // number of worker processes (default 1)
	// Threads per worker (default: CPUs divided among the workers).
	Threads int
	// GPULayers is the number of layers offloaded, -1 = all when a GPU is
	// present. 0 also keeps GPU backends out of the workers (an empty
	// OLLAMA_LIBRARY_PATH): with one loaded, ggml offloads large batches to
	// the GPU even when every layer is on the CPU, so a CPU run would not
	// be one, and GPU workers retire after each job.
	GPULayers int
	// Command starts one worker; default: this executable with "worker".
	Command []string
	// Env is added to each worker's environment (e.g. LD_LIBRARY_PATH for
	// CUDA, which must be set before the process starts).
	Env      []string
	LogLevel string // worker log level (default "warn")
	// Log receives each worker's stderr (llama.cpp's log); default: slog at debug level.
	Log io.Writer
}

// Sized returns o sized for a machine: workers worker processes (at least
// one), a budget of threads CPU threads in all (every core when ≤ 0) split
// evenly between them (at least one each), and gpuLayers layers offloaded
// to a GPU (−1: all, when one is found). Every pool evomerge starts — the
// tournament's, the chat's, the CLI commands' and the benchmarks' — is
// sized by this one rule, so a status line that describes a pool and the
// pool itself cannot disagree.
func (o PoolOptions) Sized(workers, threads, gpuLayers int) PoolOptions {
	o.Workers = max(1, workers)
	o.Threads = threadsPerWorker(threads, o.Workers)
	o.GPULayers = gpuLayers
	return o
}

// threadsPerWorker splits a thread budget (every core when ≤ 0) evenly.
func threadsPerWorker(total, workers int) int {
	if total <= 0 {
		total = runtime.NumCPU()
	}
	return max(1, total/max(1, workers))
}

// Pool runs evaluation jobs on a set of worker processes. A worker that
// dies (or retires) is replaced; a replacement that fails to start is
// tried again, startAttempts times in all, and then given up: the pool
// goes on with the workers it has, and once it has none it is broken —
// every job, waiting or to come, fails with the *StartError.
type Pool struct {
	opt   PoolOptions
	avail chan struct{} // one token per idle worker
	mu    sync.Mutex
	idle  []*procWorker
	all   map[*procWorker]bool
	next  uint64
	done  bool
	// live counts the workers running or being replaced; broken is closed
	// (and startErr set) when it reaches zero.
	live     int
	broken   chan struct{}
	startErr *StartError
	// The sources candidates are merged from (candidate.go): the latest
	// successful Prepare's request and its generation, and the last
	// generation handed out.
	prepared    *PrepareRequest
	preparedGen uint64
	prepGen     uint64
}

// Worker starts: the attempts at replacing a lost worker, and the pause
// before each attempt after the first (times the attempt's number).
const (
	startAttempts = 3
	startBackoff  = 500 * time.Millisecond
)

type procWorker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	resp   chan Response // closed when stdout ends
	exited chan struct{} // closed when the process has been waited for
	stderr *tailBuffer
	loaded map[string]bool
	pid    int
}

// WorkerError is an error the worker reported for a job.
type WorkerError struct {
	Op, Model string
	Kind      string // KindLoad, KindInput or KindInternal
	Msg       string
}

func (e *WorkerError) Error() string {
	if e.Model == "" || strings.Contains(e.Msg, e.Model) {
		return fmt.Sprintf("%s: %s", e.Op, e.Msg)
	}
	return fmt.Sprintf("%s %s: %s", e.Op, e.Model, e.Msg)
}

// CrashError reports a worker that died during a job (llama.cpp abort,
// out of memory, killed). The pool has already replaced it.
type CrashError struct {
	Op, Model string
	Status    string // how the process ended
	Stderr    string // the end of its log
}

func (e *CrashError) Error() string {
	msg := fmt.Sprintf("evaluation worker crashed during %s of %s (%s)", e.Op, e.Model, e.Status)
	if why := crashReason(e.Stderr); why != "" {
		msg += ": " + why
	}
	return msg
}

// crashReason finds why a worker died in its log: a ggml assertion or
// abort, a Go panic or fatal signal, a C++ exception; else its last line.
func crashReason(log string) string {
	var reasons []string
	for _, line := range strings.Split(log, "\n") {
		if l := strings.TrimSpace(line); isCrashLine(l) {
			reasons = append(reasons, l)
		}
		if len(reasons) == 2 {
			break
		}
	}
	if len(reasons) > 0 {
		return strings.Join(reasons, "; ")
	}
	return lastLine(log)
}

// isCrashLine reports whether a log line tells why a process died.
func isCrashLine(l string) bool {
	for _, marker := range []string{"GGML_ASSERT", "GGML_ABORT", "fatal error", "panic:", "SIGSEGV", "SIGABRT", "SIGILL", "SIGBUS", "terminate called", "CUDA error"} {
		if strings.Contains(l, marker) {
			return true
		}
	}
	return false
}

// ErrPoolClosed is returned for jobs submitted after Close.
var ErrPoolClosed = errors.New("evaluation pool is closed")

// NewPool starts the workers and checks each answers a health request.
func NewPool(ctx context.Context, opt PoolOptions) (*Pool, error) {
	if opt.Workers <= 0 {
		opt.Workers = 1
	}
	if opt.Threads <= 0 {
		opt.Threads = threadsPerWorker(0, opt.Workers)
	}
	if opt.LogLevel == "" {
		opt.LogLevel = "warn"
	}
	if len(opt.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the worker executable: %w", err)
		}
		opt.Command = []string{exe, "worker"}
	}
	p := &Pool{opt: opt, avail: make(chan struct{}, opt.Workers), all: map[*procWorker]bool{}, broken: make(chan struct{})}
	for range opt.Workers {
		w, err := p.spawn(ctx)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.live++
		p.release(w)
	}
	return p, nil
}

// Size is the number of workers.
func (p *Pool) Size() int { return p.opt.Workers }

// Threads is the number of CPU threads each worker decodes with.
func (p *Pool) Threads() int { return p.opt.Threads }

func (p *Pool) spawn(ctx context.Context) (*procWorker, error) {
	args := append(slices.Clone(p.opt.Command[1:]),
		"--threads", strconv.Itoa(p.opt.Threads),
		"--gpu-layers", strconv.Itoa(p.opt.GPULayers),
		"--log-level", p.opt.LogLevel, "--log-file", "")
	cmd := exec.Command(p.opt.Command[0], args...)
	cmd.Env = append(os.Environ(), p.opt.Env...)
	if p.opt.GPULayers == 0 {
		cmd.Env = append(cmd.Env, "OLLAMA_LIBRARY_PATH=") // the last value of a key wins
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w := &procWorker{cmd: cmd, stdin: stdin, resp: make(chan Response, 64), exited: make(chan struct{}),
		stderr: newTailBuffer(8 << 10), loaded: map[string]bool{}}
	var logw io.Writer = slogWriter{}
	if p.opt.Log != nil {
		logw = p.opt.Log
	}
	cmd.Stderr = io.MultiWriter(w.stderr, logw)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting evaluation worker %q: %w", p.opt.Command[0], err)
	}
	w.pid = cmd.Process.Pid
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var r Response
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				slog.Warn("evaluation worker wrote a non-protocol line", "pid", w.pid, "line", sc.Text())
				continue
			}
			w.resp <- r
		}
		close(w.resp)
	}()
	go func() {
		_ = cmd.Wait()
		close(w.exited)
	}()
	p.mu.Lock()
	p.all[w] = true
	p.mu.Unlock()
	// A health round trip proves the worker runs and speaks the protocol.
	hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, _, err := p.roundTrip(hctx, w, &Request{Op: OpHealth}, nil); err != nil {
		p.kill(w)
		var crash *CrashError
		if errors.As(err, &crash) {
			// It exited before answering: its log says why — all of it, not
			// only what followed the health request, which a worker that
			// fails at once can print (and have copied) before it is sent.
			return nil, fmt.Errorf("evaluation worker did not start (%s): %s", crash.Status, crashReason(w.stderr.String()))
		}
		return nil, fmt.Errorf("evaluation worker did not start: %w", err)
	}
	return w, nil
}

// acquire takes an idle worker, preferring one that has model loaded.
func (p *Pool) acquire(ctx context.Context, model string) (*procWorker, error) {
	select {
	case <-p.avail:
	case <-p.broken:
		return nil, p.startErr
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil, ErrPoolClosed
	}
	i := slices.IndexFunc(p.idle, func(w *procWorker) bool { return w.loaded[model] })
	if i < 0 {
		i = len(p.idle) - 1
	}
	w := p.idle[i]
	p.idle = slices.Delete(p.idle, i, i+1)
	return w, nil
}

func (p *Pool) release(w *procWorker) {
	p.mu.Lock()
	p.idle = append(p.idle, w)
	p.mu.Unlock()
	p.avail <- struct{}{}
}

func (p *Pool) kill(w *procWorker) {
	_ = w.cmd.Process.Kill()
	<-w.exited
	p.mu.Lock()
	delete(p.all, w)
	p.mu.Unlock()
}

// replace kills w and puts a fresh worker in its place, trying
// startAttempts times; a worker that cannot be replaced is lost, and the
// last one lost breaks the pool.
func (p *Pool) replace(w *procWorker) {
	p.kill(w)
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		if attempt > 1 {
			time.Sleep(time.Duration(attempt-1) * startBackoff)
		}
		p.mu.Lock()
		closed := p.done
		p.mu.Unlock()
		if closed {
			return
		}
		var nw *procWorker
		if nw, err = p.spawn(context.Background()); err == nil {
			slog.Info("evaluation worker replaced", "old_pid", w.pid, "pid", nw.pid)
			p.release(nw)
			return
		}
		slog.Warn("evaluation worker did not start", "attempt", attempt, "of", startAttempts, "err", err)
	}
	p.mu.Lock()
	p.live--
	left := p.live
	if left == 0 && p.startErr == nil {
		p.startErr = &StartError{Attempts: startAttempts, Err: err}
		close(p.broken)
	}
	p.mu.Unlock()
	if left > 0 {
		slog.Warn("an evaluation worker could not be replaced; the pool goes on with fewer", "workers", left, "err", err)
	} else {
		slog.Error("no evaluation worker could be started; every job fails", "err", err)
	}
}

// Do runs one request on some worker. onEvent receives token and progress
// events. Cancelling ctx kills the worker running the job.
func (p *Pool) Do(ctx context.Context, req *Request, onEvent func(Response)) (json.RawMessage, error) {
	w, err := p.acquire(ctx, req.Model)
	if err != nil {
		return nil, err
	}
	res, retire, err := p.roundTrip(ctx, w, req, onEvent)
	var crash *CrashError
	switch {
	case errors.As(err, &crash), ctx.Err() != nil, retire:
		go p.replace(w)
	default:
		if req.Model != "" && req.Op != OpUnload && err == nil {
			w.loaded[req.Model] = true
		}
		if req.Op == OpUnload {
			delete(w.loaded, req.Model)
		}
		p.release(w)
	}
	return res, err
}

func (p *Pool) roundTrip(ctx context.Context, w *procWorker, req *Request, onEvent func(Response)) (json.RawMessage, bool, error) {
	p.mu.Lock()
	p.next++
	req.ID = p.next
	p.mu.Unlock()
	line, err := json.Marshal(req)
	if err != nil {
		return nil, false, err
	}
	logMark := w.stderr.mark()
	if _, err := w.stdin.Write(append(line, '\n')); err != nil {
		return nil, false, p.crashed(w, req, logMark)
	}
	for {
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case r, ok := <-w.resp:
			if !ok {
				return nil, false, p.crashed(w, req, logMark)
			}
			if r.ID != req.ID && r.ID != 0 {
				continue // a late line from a cancelled job
			}
			switch r.Event {
			case EventDone:
				return r.Result, r.Retire, nil
			case EventError:
				msg := r.Error
				if r.Kind == KindLoad {
					// llama.cpp says why on stderr ("missing tensor ...").
					if why := w.loadReason(logMark); why != "" {
						msg += ": " + why
					}
				}
				return nil, r.Retire, &WorkerError{Op: req.Op, Model: req.Model, Kind: r.Kind, Msg: msg}
			default:
				if onEvent != nil {
					onEvent(r)
				}
			}
		}
	}
}

// loadReason is llama.cpp's reason for the load failure the worker just
// reported. Its stderr is a separate pipe, copied by another goroutine, so
// the response can overtake the log lines written before it: wait for them
// a little (load failures are rare; a reason is worth a pause).
func (w *procWorker) loadReason(logMark int64) string {
	deadline := time.Now().Add(time.Second)
	for {
		why := lastErrorLine(w.stderr.since(logMark))
		if why != "" || time.Now().After(deadline) {
			return why
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *Pool) crashed(w *procWorker, req *Request, logMark int64) error {
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
	}
	status := "running"
	if st := w.cmd.ProcessState; st != nil {
		status = st.String()
	}
	err := &CrashError{Op: req.Op, Model: req.Model, Status: status, Stderr: w.stderr.since(logMark)}
	if req.Op != OpHealth { // a worker that does not start is reported by spawn
		slog.Warn("evaluation worker crashed", "pid", w.pid, "op", req.Op, "model", req.Model, "status", status, "reason", crashReason(err.Stderr))
	}
	return err
}

// Close stops every worker.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	workers := make([]*procWorker, 0, len(p.all))
	for w := range p.all {
		workers = append(workers, w)
	}
	p.mu.Unlock()
	for _, w := range workers {
		_ = w.stdin.Close() // lets an idle worker exit cleanly
		select {
		case <-w.exited:
		case <-time.After(2 * time.Second):
			_ = w.cmd.Process.Kill()
			<-w.exited
		}
	}
}

// Typed helpers over Do.

// Load loads model in a worker and reports its shape.
func (p *Pool) Load(ctx context.Context, model string) (ModelInfo, error) {
	return call[ModelInfo](ctx, p, &Request{Op: OpLoad, Model: model}, nil)
}

// Perplexity scores model on each text.
func (p *Pool) Perplexity(ctx context.Context, model string, texts []Text, opt PerplexityOptions, progress func(text string, done, total int)) (PerplexityReply, error) {
	var onEvent func(Response)
	if progress != nil {
		onEvent = func(r Response) { progress(r.Text, r.Done, r.Total) }
	}
	return call[PerplexityReply](ctx, p, &Request{Op: OpPerplexity, Model: model, Texts: texts, Perplexity: &opt}, onEvent)
}

// Generate continues prompt, streaming text pieces to onText.
func (p *Pool) Generate(ctx context.Context, model, prompt string, opt GenerateOptions, onText func(string)) (GenerateResult, error) {
	var onEvent func(Response)
	if onText != nil {
		onEvent = func(r Response) {
			if r.Event == EventToken {
				onText(r.Text)
			}
		}
	}
	return call[GenerateResult](ctx, p, &Request{Op: OpGenerate, Model: model, Prompt: prompt, Generate: &opt}, onEvent)
}

// Tasks scores a multiple-choice task set.
func (p *Pool) Tasks(ctx context.Context, model string, tasks []Task) (TaskResult, error) {
	return call[TaskResult](ctx, p, &Request{Op: OpTasks, Model: model, Tasks: tasks}, nil)
}

// Coherence measures model's coherence.
func (p *Pool) Coherence(ctx context.Context, model string, opt CoherenceOptions) (CoherenceResult, error) {
	return call[CoherenceResult](ctx, p, &Request{Op: OpCoherence, Model: model, Coherence: &opt}, nil)
}

// Unload frees model in every idle worker that holds it.
func (p *Pool) Unload(ctx context.Context, model string) {
	for range p.opt.Workers {
		p.mu.Lock()
		holds := slices.ContainsFunc(p.idle, func(w *procWorker) bool { return w.loaded[model] })
		p.mu.Unlock()
		if !holds {
			return
		}
		if _, err := p.Do(ctx, &Request{Op: OpUnload, Model: model}, nil); err != nil {
			return
		}
	}
}

func call[T any](ctx context.Context, p *Pool, req *Request, onEvent func(Response)) (T, error) {
	var out T
	raw, err := p.Do(ctx, req, onEvent)
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, fmt.Errorf("%s: bad reply from worker: %w", req.Op, err)
	}
	return out, nil
}

// tailBuffer keeps the last n bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	n     int
	buf   []byte
	total int64 // bytes ever written
}

// mark is the position of the next byte written.
func (t *tailBuffer) mark() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// since returns what was written after mark (as much as is still kept).
func (t *tailBuffer) since(mark int64) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := int(min(t.total-mark, int64(len(t.buf))))
	return string(t.buf[len(t.buf)-n:])
}

func newTailBuffer(n int) *tailBuffer { return &tailBuffer{n: n} }

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	t.total += int64(len(b))
	if len(t.buf) > t.n {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.n:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// lastLine is the last line of a log that says something (llama.cpp's
// loader prints rows of progress dots).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.IndexFunc(l, unicode.IsLetter) >= 0 {
			return l
		}
	}
	return ""
}

// lastErrorLine is llama.cpp's reason for failing to load a model
// ("missing tensor 'output_norm.weight'"), else the last error in the log.
func lastErrorLine(s string) string {
	if _, why, ok := strings.Cut(s, "error loading model: "); ok {
		return strings.TrimSpace(strings.SplitN(why, "\n", 2)[0])
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= max(0, len(lines)-20); i-- {
		l := strings.TrimSpace(lines[i])
		if strings.Contains(l, "error") || strings.Contains(l, "failed") || strings.Contains(l, "missing") {
			if _, after, ok := strings.Cut(l, ": "); ok && strings.HasPrefix(l, "llama_") {
				return after
			}
			return l
		}
	}
	return ""
}

// slogWriter forwards worker stderr lines to slog: at debug level, but
// lines that report an error (or a crash) at warn, so that the log keeps
// them at its default level while llama.cpp's loader chatter stays out.
type slogWriter struct{}

func (slogWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		switch {
		case line == "":
		case reportsError(line):
			slog.Warn("worker: " + line)
		default:
			slog.Debug("worker: " + line)
		}
	}
	return len(b), nil
}

// reportsError reports whether a worker's log line says something failed.
func reportsError(line string) bool {
	l := strings.ToLower(line)
	return strings.Contains(l, "error") || strings.Contains(l, "failed") || isCrashLine(line)
}

// PoolHealth asks one idle worker for its health.
func PoolHealth(ctx context.Context, p *Pool) (Health, error) {
	return call[Health](ctx, p, &Request{Op: OpHealth}, nil)
}

// StartError reports that the pool has no worker left and none could be
// started: Attempts starts failed in a row, the last with Err. Every job
// then fails with it; a run stops with it rather than wait.
type StartError struct {
	Attempts int
	Err      error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("no evaluation worker could be started (%d attempts); %v", e.Attempts, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }
