package dist

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evomerge/evomerge/engine/eval"
)

// Heartbeat is how often hosts renew their registry entry; an entry not
// renewed for workerTTL is gone (the host left or died).
const (
	Heartbeat = time.Second
	workerTTL = 5 * Heartbeat
	// dedupWindow is how long a job or result id is remembered.
	dedupWindow = time.Hour
	// resultAckWait is how long a result stays with the coordinator it was
	// delivered to before it is delivered again: a coordinator that was
	// killed holding results gets them back this soon after --resume.
	resultAckWait = 5 * time.Second
)

// CoordinatorOptions configure the coordinator side of a run.
type CoordinatorOptions struct {
	// Info announces the run (Run, Prepare, AckWait, MaxDeliver; the
	// versions are filled in).
	Info RunInfo
	// Known reports whether a result's key is already recorded (a resumed
	// run's history): such a result is acked when it arrives.
	Known func(key string) bool
	// Workers, when set, receives the worker list and what changed ("joined
	// NAME", "left NAME", "NAME refused: …").
	Workers func(all []WorkerInfo, change string)
}

// Coordinator submits a run's jobs and receives their results.
type Coordinator struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	n       names
	info    RunInfo
	obj     jetstream.ObjectStore
	runs    jetstream.KeyValue
	workers jetstream.KeyValue
	opt     CoordinatorOptions
	session string // this coordinator's part of the jobs' message ids
	cc      jetstream.ConsumeContext
	prog    *nats.Subscription
	stop    chan struct{}
	done    chan struct{}

	mu        sync.Mutex
	texts     map[string]string // text name + content hash → sha256, uploaded
	waiters   map[string]*waiter
	unclaimed map[string]*Outcome
	seen      map[string]WorkerInfo
}

type waiter struct {
	ch       chan *Outcome
	progress func(stage string, done, total int)
}

// Outcome is a job's result as the coordinator received it. Ack removes
// it from the results stream; until then a restarted coordinator gets it
// again.
type Outcome struct {
	Result
	msg jetstream.Msg
}

// Ack confirms the result is recorded.
func (o *Outcome) Ack() error {
	if o.msg == nil {
		return nil
	}
	return o.msg.Ack()
}

// OpenCoordinator creates (or, for a resumed run, reopens) the run's
// streams, consumers and buckets on nc's server and announces the run.
func OpenCoordinator(ctx context.Context, nc *nats.Conn, opt CoordinatorOptions) (*Coordinator, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	info := opt.Info
	info.Protocol = Protocol
	info.Evomerge, info.Llama = Versions()
	if info.Started.IsZero() {
		info.Started = time.Now()
	}
	var nonce [4]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	c := &Coordinator{nc: nc, js: js, n: names{info.Run}, info: info, opt: opt, session: hex.EncodeToString(nonce[:]),
		stop: make(chan struct{}), done: make(chan struct{}),
		texts: map[string]string{}, waiters: map[string]*waiter{}, unclaimed: map[string]*Outcome{}, seen: map[string]WorkerInfo{}}
	if err := c.setup(ctx); err != nil {
		return nil, fmt.Errorf("job server: %w", err)
	}
	return c, nil
}

func (c *Coordinator) setup(ctx context.Context) error {
	jobs, err := c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: c.n.jobsStream(), Subjects: []string{c.n.jobSubject()},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: dedupWindow})
	if err != nil {
		return err
	}
	// Jobs a previous coordinator of this run left are dropped: the
	// resumed run publishes again the candidates it still needs (a job
	// that had been handed out MaxDeliver times would otherwise sit in the
	// stream, undeliverable).
	if err := jobs.Purge(ctx); err != nil {
		return err
	}
	if _, err := jobs.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: hostsConsumer, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: c.info.AckWait, MaxDeliver: c.info.MaxDeliver + 1, MaxAckPending: -1}); err != nil {
		return err
	}
	results, err := c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: c.n.resultsStream(), Subjects: []string{c.n.resultSubject("*")},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: dedupWindow})
	if err != nil {
		return err
	}
	rc, err := results.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: resultsConsumer, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: resultAckWait, MaxAckPending: -1})
	if err != nil {
		return err
	}
	if c.workers, err = c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: c.n.workersBucket(), TTL: workerTTL,
		Storage: jetstream.MemoryStorage}); err != nil {
		return err
	}
	if c.obj, err = c.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: c.n.objectBucket(),
		Storage: jetstream.FileStorage}); err != nil {
		return err
	}
	if c.runs, err = c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: runsBucket, Storage: jetstream.FileStorage}); err != nil {
		return err
	}
	if c.prog, err = c.nc.Subscribe(c.n.progressAll(), c.onProgress); err != nil {
		return err
	}
	if c.cc, err = rc.Consume(c.onResult); err != nil {
		return err
	}
	// Drain the results a previous coordinator left unacknowledged before
	// the run submits anything (bounded: they are delivered at once).
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ci, err := rc.Info(ctx)
		if err != nil || ci.NumPending == 0 {
			break
		}
	}
	raw, err := json.Marshal(c.info)
	if err != nil {
		return err
	}
	if _, err := c.runs.Put(ctx, c.info.Run, raw); err != nil {
		return err
	}
	go c.watchWorkers()
	return nil
}

// Info is the run as announced.
func (c *Coordinator) Info() RunInfo { return c.info }

// ShareFile puts a local file into the run's object store under its
// sha256, for hosts that have it neither at the same path nor cached.
func (c *Coordinator) ShareFile(ctx context.Context, path, sha string) error {
	name := sourceObject(sha)
	if _, err := c.obj.GetInfo(ctx, name); err == nil {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := c.obj.Put(ctx, jetstream.ObjectMeta{Name: name, Description: path}, f); err != nil {
		return fmt.Errorf("sharing %s: %w", path, err)
	}
	return nil
}

// textRefs stores texts in the object store once and returns their refs.
func (c *Coordinator) textRefs(ctx context.Context, texts []eval.Text) ([]TextRef, error) {
	refs := make([]TextRef, len(texts))
	for i, t := range texts {
		raw, err := json.Marshal(t)
		if err != nil {
			return nil, err
		}
		sha := hashHex(raw)
		c.mu.Lock()
		_, ok := c.texts[sha]
		c.mu.Unlock()
		if !ok {
			if _, err := c.obj.GetInfo(ctx, textObject(sha)); err != nil {
				if _, err := c.obj.PutBytes(ctx, textObject(sha), raw); err != nil {
					return nil, fmt.Errorf("storing text %s: %w", t.Name, err)
				}
			}
			c.mu.Lock()
			c.texts[sha] = t.Name
			c.mu.Unlock()
		}
		refs[i] = TextRef{Name: t.Name, SHA256: sha}
	}
	return refs, nil
}

// ErrBusy is returned by Submit for a key that is already in flight.
var ErrBusy = errors.New("a job with this key is already in flight")

// Submit publishes a job (Nats-Msg-Id = job.Key and this coordinator's
// session) and waits for its result (Nats-Msg-Id = job.Key); progress
// receives the host's progress. A result already pending for the key (a
// resumed run) is returned without publishing.
// The caller acks the outcome once it has recorded it.
func (c *Coordinator) Submit(ctx context.Context, job Job, progress func(stage string, done, total int)) (*Outcome, error) {
	c.mu.Lock()
	if o, ok := c.unclaimed[job.Key]; ok {
		delete(c.unclaimed, job.Key)
		c.mu.Unlock()
		return o, nil
	}
	if _, ok := c.waiters[job.Key]; ok {
		c.mu.Unlock()
		return nil, ErrBusy
	}
	w := &waiter{ch: make(chan *Outcome, 1), progress: progress}
	c.waiters[job.Key] = w
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.waiters[job.Key] == w {
			delete(c.waiters, job.Key)
		}
		c.mu.Unlock()
	}()

	job.Run, job.Protocol, job.Evomerge, job.Llama = c.info.Run, Protocol, c.info.Evomerge, c.info.Llama
	refs, err := c.textRefs(ctx, job.Request.Texts)
	if err != nil {
		return nil, err
	}
	job.Texts, job.Request.Texts = refs, nil
	raw, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	if _, err := c.js.Publish(ctx, c.n.jobSubject(), raw, jetstream.WithMsgID(job.Key+"."+c.session)); err != nil {
		return nil, fmt.Errorf("publishing job %s: %w", job.ID, err)
	}
	select {
	case o := <-w.ch:
		return o, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Coordinator) onResult(msg jetstream.Msg) {
	var r Result
	if err := json.Unmarshal(msg.Data(), &r); err != nil || r.Key == "" {
		_ = msg.Term() // not ours to read: never redeliver it
		return
	}
	if c.opt.Known != nil && c.opt.Known(r.Key) {
		_ = msg.Ack()
		return
	}
	o := &Outcome{Result: r, msg: msg}
	if r.Kind == KindStart {
		// A signal, not an answer: never kept for a later coordinator.
		_ = msg.Ack()
		o.msg = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.waiters[r.Key]; ok {
		delete(c.waiters, r.Key)
		w.ch <- o
		return
	}
	if o.msg != nil {
		c.unclaimed[r.Key] = o // a redelivery replaces the delivery it repeats
	}
}

func (c *Coordinator) onProgress(m *nats.Msg) {
	key := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	c.mu.Lock()
	w := c.waiters[key]
	c.mu.Unlock()
	if w == nil || w.progress == nil {
		return
	}
	var p Progress
	if json.Unmarshal(m.Data, &p) == nil {
		w.progress(p.Stage, p.Done, p.Total)
	}
}

// Workers lists the hosts whose registry entries are alive.
func (c *Coordinator) Workers() []WorkerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := make([]WorkerInfo, 0, len(c.seen))
	for _, w := range c.seen {
		all = append(all, w)
	}
	slices.SortFunc(all, func(a, b WorkerInfo) int { return strings.Compare(a.Name, b.Name) })
	return all
}

// Slots is the number of job slots of the ready hosts.
func (c *Coordinator) Slots() int {
	n := 0
	for _, w := range c.Workers() {
		if !w.Refused() {
			n += w.Slots
		}
	}
	return n
}

// watchWorkers polls the registry and reports joins, leaves and refusals.
func (c *Coordinator) watchWorkers() {
	defer close(c.done)
	t := time.NewTicker(Heartbeat / 2)
	defer t.Stop()
	for {
		c.pollWorkers()
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

func (c *Coordinator) pollWorkers() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	keys, err := c.workers.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return
	}
	now := map[string]WorkerInfo{}
	for _, k := range keys {
		e, err := c.workers.Get(ctx, k)
		if err != nil {
			continue
		}
		var w WorkerInfo
		if json.Unmarshal(e.Value(), &w) == nil {
			now[k] = w
		}
	}
	var changes []string
	c.mu.Lock()
	for k, w := range now {
		old, ok := c.seen[k]
		switch {
		case w.Refused() && (!ok || old.State != w.State):
			changes = append(changes, fmt.Sprintf("worker %s %s", w.Name, w.State))
		case !ok && !w.Refused():
			changes = append(changes, fmt.Sprintf("worker %s joined: %s, %d slots", w.Name, w.Device, w.Slots))
		}
	}
	for k, w := range c.seen {
		if _, ok := now[k]; !ok && !w.Refused() {
			changes = append(changes, fmt.Sprintf("worker %s left after %d jobs", w.Name, w.Done))
		}
	}
	c.seen = now
	c.mu.Unlock()
	if c.opt.Workers != nil {
		all := c.Workers()
		for _, ch := range changes {
			c.opt.Workers(all, ch)
		}
		if len(changes) == 0 {
			c.opt.Workers(all, "")
		}
	}
}

// Close stops receiving. When finished, the run is over: its streams and
// buckets are deleted and hosts stop serving it; otherwise (cancelled,
// failed) they are kept for --resume.
func (c *Coordinator) Close(finished bool) {
	close(c.stop)
	<-c.done
	if c.cc != nil {
		c.cc.Stop()
	}
	if c.prog != nil {
		_ = c.prog.Unsubscribe()
	}
	if !finished {
		// Results nobody claimed go back to the stream at once, for the
		// coordinator that resumes the run.
		c.mu.Lock()
		for _, o := range c.unclaimed {
			_ = o.msg.Nak()
		}
		c.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.runs.Delete(ctx, c.info.Run)
	_ = c.js.DeleteStream(ctx, c.n.jobsStream())
	_ = c.js.DeleteStream(ctx, c.n.resultsStream())
	_ = c.js.DeleteKeyValue(ctx, c.n.workersBucket())
	_ = c.js.DeleteObjectStore(ctx, c.n.objectBucket())
}
