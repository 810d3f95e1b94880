package dist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evomerge/evomerge/engine/eval"
)

// Executor runs jobs on a host: an eval.Pool (PoolExecutor), or a test
// scorer.
type Executor interface {
	Execute(ctx context.Context, job *Job, progress func(stage string, done, total int)) (eval.CandidateReply, error)
}

// HostOptions describe a host to the registry.
type HostOptions struct {
	Name   string // unique per host (default: hostname-pid)
	Slots  int    // jobs at once (default 1)
	Device string // "CPU" or the GPUs
	VRAM   int64
	Local  bool // the coordinator's own pool
	// Logf receives the host's one-line notes (refusals, failures).
	Logf func(format string, args ...any)
}

func (o *HostOptions) defaults() {
	if o.Name == "" {
		h, _ := os.Hostname()
		o.Name = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	o.Slots = max(1, o.Slots)
	if o.Device == "" {
		o.Device = "CPU"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// host serves one run.
type host struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	n     names
	info  RunInfo
	exec  Executor
	opt   HostOptions
	obj   jetstream.ObjectStore
	reg   jetstream.KeyValue
	quit  context.CancelFunc // stops serving
	busy  atomic.Int32
	done  atomic.Int32
	mu    sync.Mutex
	texts map[string]eval.Text // by sha256
}

// Serve takes jobs of the run info announces and runs them on exec, one
// per slot, until ctx ends or the run is over (its streams deleted).
func Serve(ctx context.Context, nc *nats.Conn, info RunInfo, exec Executor, opt HostOptions) error {
	opt.defaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	h := &host{nc: nc, js: js, n: names{info.Run}, info: info, exec: exec, opt: opt, texts: map[string]eval.Text{}}
	if h.reg, err = js.KeyValue(ctx, h.n.workersBucket()); err != nil {
		return fmt.Errorf("run %s: workers bucket: %w", info.Run, err)
	}
	if h.obj, err = js.ObjectStore(ctx, h.n.objectBucket()); err != nil {
		return fmt.Errorf("run %s: files bucket: %w", info.Run, err)
	}
	cons, err := js.Consumer(ctx, h.n.jobsStream(), hostsConsumer)
	if err != nil {
		return fmt.Errorf("run %s: jobs: %w", info.Run, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h.quit = cancel
	go h.heartbeat(ctx, "ready")
	var wg sync.WaitGroup
	for range opt.Slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel() // one slot finding the run over ends them all
			h.slot(ctx, cons)
		}()
	}
	wg.Wait()
	h.deregister()
	return nil
}

// pollWait bounds one pull request of an idle slot, and so how long a
// host takes to notice it should stop.
const pollWait = 250 * time.Millisecond

// slot fetches one job at a time (no prefetch) and runs it.
func (h *host) slot(ctx context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		msg, err := cons.Next(jetstream.FetchMaxWait(pollWait))
		if err == nil {
			h.run(ctx, msg)
			continue
		}
		if ctx.Err() != nil || h.over(ctx) {
			return
		}
		if !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			time.Sleep(200 * time.Millisecond) // disconnected: the client reconnects
		}
	}
}

// over reports whether the run's job stream is gone.
func (h *host) over(ctx context.Context) bool {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := h.js.Stream(c, h.n.jobsStream())
	return errors.Is(err, jetstream.ErrStreamNotFound)
}

func (h *host) run(ctx context.Context, msg jetstream.Msg) {
	h.busy.Add(1)
	defer h.busy.Add(-1)
	t0 := time.Now()
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		return
	}
	var job Job
	if err := json.Unmarshal(msg.Data(), &job); err != nil || job.Key == "" {
		h.opt.Logf("job %d of run %s is not readable: dropped", meta.Sequence.Stream, h.info.Run)
		_ = msg.Term()
		return
	}
	deliveries := int(meta.NumDelivered)
	res := Result{Key: job.Key, Worker: h.opt.Name, Deliveries: deliveries}
	if deliveries > h.info.MaxDeliver {
		res.Kind = KindUndelivered
		res.Err = fmt.Sprintf("handed out %d times without a result: the workers that took it died or stopped reporting", h.info.MaxDeliver)
		h.finish(ctx, msg, res, t0)
		return
	}
	if job.Request.Texts, err = h.resolveTexts(ctx, job.Texts); err != nil {
		h.opt.Logf("%s: %v", job.ID, err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	// Heartbeats keep the job while it runs.
	jctx, stop := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(h.info.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	var last time.Time
	reply, err := h.exec.Execute(jctx, &job, func(stage string, done, total int) {
		if now := time.Now(); now.Sub(last) > 100*time.Millisecond || done == total {
			last = now
			if raw, err := json.Marshal(Progress{stage, done, total}); err == nil {
				_ = h.nc.Publish(h.n.progressSubject(job.Key), raw)
			}
		}
	})
	stop()
	_ = h.nc.Flush() // the progress reaches the coordinator before the result
	if ctx.Err() != nil {
		_ = msg.Nak() // leaving: another host takes it now
		return
	}
	res.Reply = reply
	var noWorkers *eval.StartError
	if errors.As(err, &noWorkers) {
		_ = msg.Nak() // not the job's fault: another host may run it
		if !h.opt.Local {
			h.opt.Logf("%s: %v; this host takes no more jobs", h.opt.Name, err)
			h.quit()
			return
		}
		// The coordinator's own workers: the run stops with the reason.
		res.Kind, res.Err, res.Attempts = KindStart, noWorkers.Err.Error(), noWorkers.Attempts
		h.finishNoAck(ctx, res, t0)
		return
	}
	if err != nil {
		// What the worker reported, or a crash of the worker process (a
		// llama.cpp abort: the pool has replaced it), is the candidate's
		// outcome, as on one machine. Anything else (the host's own
		// trouble) hands the job back until its last delivery.
		var we *eval.WorkerError
		var ce *eval.CrashError
		switch {
		case errors.As(err, &we):
			res.Kind = we.Kind
		case errors.As(err, &ce):
			res.Kind = KindCrash
		case deliveries < h.info.MaxDeliver:
			h.opt.Logf("%s failed on %s (delivery %d of %d), handing it back: %v", job.ID, h.opt.Name, deliveries, h.info.MaxDeliver, err)
			_ = msg.NakWithDelay(time.Second)
			return
		default:
			res.Kind = eval.KindInternal
		}
		res.Err = err.Error()
	}
	h.done.Add(1)
	h.finish(ctx, msg, res, t0)
}

// finish publishes the result (retrying while disconnected), then acks
// the job.
func (h *host) finish(ctx context.Context, msg jetstream.Msg, res Result, t0 time.Time) {
	if !h.publish(ctx, res, t0) {
		return // the job is redelivered
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = msg.DoubleAck(actx)
}

// finishNoAck publishes a result for a job handed back (a start failure:
// sent without a message id, since it does not answer the job).
func (h *host) finishNoAck(ctx context.Context, res Result, t0 time.Time) {
	res.Seconds = time.Since(t0).Seconds()
	if raw, err := json.Marshal(res); err == nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, _ = h.js.Publish(pctx, h.n.resultSubject(res.Key), raw)
	}
}

// publish sends the result with Nats-Msg-Id = its key, retrying while
// disconnected; false if ctx ended first.
func (h *host) publish(ctx context.Context, res Result, t0 time.Time) bool {
	res.Seconds = time.Since(t0).Seconds()
	raw, err := json.Marshal(res)
	if err != nil {
		return false
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := h.js.Publish(pctx, h.n.resultSubject(res.Key), raw, jetstream.WithMsgID(res.Key))
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
	return true
}

// resolveTexts fetches a job's texts from the run's object store (once).
func (h *host) resolveTexts(ctx context.Context, refs []TextRef) ([]eval.Text, error) {
	var texts []eval.Text
	for _, r := range refs {
		h.mu.Lock()
		t, ok := h.texts[r.SHA256]
		h.mu.Unlock()
		if !ok {
			raw, err := h.obj.GetBytes(ctx, textObject(r.SHA256))
			if err != nil {
				return nil, fmt.Errorf("text %s (sha256 %.12s): %w", r.Name, r.SHA256, err)
			}
			if hashHex(raw) != r.SHA256 {
				return nil, fmt.Errorf("text %s: content does not match its sha256", r.Name)
			}
			if err := json.Unmarshal(raw, &t); err != nil {
				return nil, fmt.Errorf("text %s: %w", r.Name, err)
			}
			h.mu.Lock()
			h.texts[r.SHA256] = t
			h.mu.Unlock()
		}
		texts = append(texts, t)
	}
	return texts, nil
}

func (h *host) entry(state string) WorkerInfo {
	hn, _ := os.Hostname()
	ev, ll := Versions()
	return WorkerInfo{Name: h.opt.Name, Host: hn, Device: h.opt.Device, VRAM: h.opt.VRAM, Slots: h.opt.Slots,
		Busy: int(h.busy.Load()), Done: int(h.done.Load()), State: state, Local: h.opt.Local, Evomerge: ev, Llama: ll, Seen: time.Now()}
}

// heartbeat renews the host's registry entry until ctx ends.
func (h *host) heartbeat(ctx context.Context, state string) {
	register(ctx, h.reg, h.entry, state)
}

func (h *host) deregister() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = h.reg.Delete(ctx, h.opt.Name)
}

// register puts entry(state) into reg every Heartbeat until ctx ends.
func register(ctx context.Context, reg jetstream.KeyValue, entry func(string) WorkerInfo, state string) {
	t := time.NewTicker(Heartbeat)
	defer t.Stop()
	for {
		w := entry(state)
		if raw, err := json.Marshal(w); err == nil {
			pctx, cancel := context.WithTimeout(ctx, Heartbeat)
			_, _ = reg.Put(pctx, w.Name, raw)
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
