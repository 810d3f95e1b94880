package tui

import (
	"context"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/themes"
)

// programContext is shared by the root model and every component (the
// gh-dash pattern): the screen size, the theme and its styles, the key map,
// the configuration the next run uses, and the services commands need (the
// backend, the sender that delivers background messages). Only the root
// model's Update writes to it; components read it while rendering.
type programContext struct {
	width, height int

	theme   themes.Theme
	styles  themes.Styles
	noColor bool
	keys    keyMap

	cfg        *config.Config
	configPath string

	backend Backend
	send    *sender
	now     func() time.Time
	device  string // CPU/GPU description from the backend, when it offers one
	base    context.Context
}

// setTheme switches the theme (by name), keeping NO_COLOR in force.
func (c *programContext) setTheme(name string) {
	t, err := themes.ByName(name)
	if err != nil {
		t = themes.DarkTheme()
	}
	if c.noColor {
		t = t.WithoutColor()
	}
	c.theme = t
	c.styles = t.Styles()
}

// sender delivers messages from background goroutines to the program. It
// exists so that a model can be built (and its background work started)
// before the program that will receive the messages: until attach, messages
// wait in a backlog, in order. Sends are serialised, so messages from one
// goroutine arrive in the order they were sent.
type sender struct {
	mu      sync.Mutex // serialises deliveries
	bmu     sync.Mutex // guards fn and backlog
	fn      func(tea.Msg)
	backlog []tea.Msg
}

// attach sets the delivery function (normally (*tea.Program).Send) and
// delivers the backlog.
func (s *sender) attach(fn func(tea.Msg)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bmu.Lock()
	s.fn = fn
	backlog := s.backlog
	s.backlog = nil
	s.bmu.Unlock()
	for _, m := range backlog {
		fn(m)
	}
}

// Send delivers msg, or queues it until attach.
func (s *sender) Send(msg tea.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bmu.Lock()
	fn := s.fn
	if fn == nil {
		s.backlog = append(s.backlog, msg)
	}
	s.bmu.Unlock()
	if fn != nil {
		fn(msg)
	}
}

// relay moves items (engine events, generated text) from a producer that
// must not block to the program, in batches, at most one batch per
// interval. A batcher decides how items coalesce: progress updates replace
// older ones for the same candidate, text chunks concatenate. Items that
// end something (Finished, errors) are never dropped.
type relay struct {
	mu       sync.Mutex
	b        batcher
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	send     func(tea.Msg)
	wrap     func([]any) tea.Msg
	interval time.Duration
	stopped  bool
}

// batcher accumulates items between two deliveries.
type batcher interface {
	add(item any)
	take() []any
}

func newRelay(b batcher, send func(tea.Msg), wrap func([]any) tea.Msg, interval time.Duration) *relay {
	r := &relay{b: b, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		send: send, wrap: wrap, interval: interval}
	go r.loop()
	return r
}

// push adds an item; it never blocks for longer than a mutex.
func (r *relay) push(item any) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.b.add(item)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *relay) flush() {
	r.mu.Lock()
	items := r.b.take()
	r.mu.Unlock()
	if len(items) > 0 {
		r.send(r.wrap(items))
	}
}

func (r *relay) loop() {
	defer close(r.done)
	for {
		select {
		case <-r.wake:
			r.flush()
			// Let the next batch build up: the screen cannot usefully
			// redraw faster than this anyway.
			select {
			case <-time.After(r.interval):
			case <-r.stop:
				return
			}
		case <-r.stop:
			return
		}
	}
}

// close delivers whatever is pending and stops the relay. After close
// returns, every pushed item has been handed to send.
func (r *relay) close() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.stopped = true
	r.mu.Unlock()
	close(r.stop)
	<-r.done
	r.flush()
}

// eventBatcher coalesces engine events: a candidate's progress replaces
// its previous progress still waiting in the batch; log lines beyond
// maxPendingLogs are counted and replaced by one warning. Everything else
// is kept, in order.
type eventBatcher struct {
	items    []any
	progress map[string]int // candidate ID → index of its pending progress
	logs     int
	dropped  int
}

const maxPendingLogs = 500

func (b *eventBatcher) add(item any) {
	switch e := item.(type) {
	case evolve.CandidateProgress:
		if i, ok := b.progress[e.ID]; ok {
			b.items[i] = e
			return
		}
		if b.progress == nil {
			b.progress = map[string]int{}
		}
		b.progress[e.ID] = len(b.items)
	case evolve.CandidateScored:
		delete(b.progress, e.Candidate.ID)
	case evolve.Log:
		if b.logs >= maxPendingLogs && e.Level != "error" {
			b.dropped++
			return
		}
		b.logs++
	}
	b.items = append(b.items, item)
}

func (b *eventBatcher) take() []any {
	items := b.items
	if b.dropped > 0 {
		items = append(items, evolve.Log{Level: "warn", Message: droppedMessage(b.dropped)})
	}
	*b = eventBatcher{}
	return items
}

func droppedMessage(n int) string {
	return "log too fast for the screen: " + itoa(n) + " messages not shown (the run's log file has them)"
}

// textBatcher concatenates streamed text chunks of the same generation.
type textBatcher struct{ items []any }

// textChunk is generated text for chat generation gen.
type textChunk struct {
	gen  int
	text string
}

func (b *textBatcher) add(item any) {
	if c, ok := item.(textChunk); ok && len(b.items) > 0 {
		if last, ok := b.items[len(b.items)-1].(textChunk); ok && last.gen == c.gen {
			last.text += c.text
			b.items[len(b.items)-1] = last
			return
		}
	}
	b.items = append(b.items, item)
}

func (b *textBatcher) take() []any {
	items := b.items
	b.items = nil
	return items
}
