package tui

import (
	"errors"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/evomerge/evomerge/engine/evolve"
)

func TestEventBatcherCoalescesProgressOnly(t *testing.T) {
	var b eventBatcher
	b.add(evolve.CandidateProgress{ID: "a", Status: evolve.StatusMerging, Fraction: 0.1})
	b.add(evolve.CandidateProgress{ID: "b", Status: evolve.StatusMerging, Fraction: 0.1})
	b.add(evolve.CandidateProgress{ID: "a", Status: evolve.StatusEvaluating, Fraction: 0.5})
	b.add(evolve.CandidateScored{Candidate: evolve.CandidateInfo{ID: "a"}, Status: evolve.StatusDone})
	b.add(evolve.CandidateProgress{ID: "a", Status: evolve.StatusDone, Fraction: 1}) // after the score: kept, in order
	b.add(evolve.Finished{Reason: "generations"})
	got := b.take()
	want := []any{
		evolve.CandidateProgress{ID: "a", Status: evolve.StatusEvaluating, Fraction: 0.5},
		evolve.CandidateProgress{ID: "b", Status: evolve.StatusMerging, Fraction: 0.1},
		evolve.CandidateScored{Candidate: evolve.CandidateInfo{ID: "a"}, Status: evolve.StatusDone},
		evolve.CandidateProgress{ID: "a", Status: evolve.StatusDone, Fraction: 1},
		evolve.Finished{Reason: "generations"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d items: %+v", len(got), got)
	}
	for i := range want {
		if !sameEvent(got[i], want[i]) {
			t.Fatalf("item %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(b.take()) != 0 {
		t.Fatal("take did not empty the batch")
	}
}

func sameEvent(a, b any) bool {
	switch x := a.(type) {
	case evolve.CandidateScored:
		y, ok := b.(evolve.CandidateScored)
		return ok && x.Candidate.ID == y.Candidate.ID && x.Status == y.Status
	case evolve.Finished:
		y, ok := b.(evolve.Finished)
		return ok && x.Reason == y.Reason
	}
	return a == b
}

func TestEventBatcherBoundsLogsButKeepsErrors(t *testing.T) {
	var b eventBatcher
	for i := range maxPendingLogs + 100 {
		b.add(evolve.Log{Level: "info", Message: itoa(i)})
	}
	b.add(evolve.Log{Level: "error", Message: "boom"})
	b.add(evolve.Finished{Reason: "error", Err: errors.New("boom")})
	got := b.take()
	if len(got) != maxPendingLogs+3 {
		t.Fatalf("%d items", len(got))
	}
	if l := got[maxPendingLogs].(evolve.Log); l.Message != "boom" {
		t.Fatalf("error log dropped: %+v", l)
	}
	if _, ok := got[maxPendingLogs+1].(evolve.Finished); !ok {
		t.Fatal("Finished dropped")
	}
	if l := got[len(got)-1].(evolve.Log); l.Level != "warn" || l.Message != droppedMessage(100) {
		t.Fatalf("no drop notice: %+v", l)
	}
}

func TestTextBatcherConcatenates(t *testing.T) {
	var b textBatcher
	b.add(textChunk{gen: 1, text: "Call"})
	b.add(textChunk{gen: 1, text: " me"})
	b.add(textChunk{gen: 2, text: "In"})
	got := b.take()
	if len(got) != 2 || got[0].(textChunk).text != "Call me" || got[1].(textChunk).text != "In" {
		t.Fatalf("%+v", got)
	}
}

// A fast producer: batches are few, nothing is lost, order holds, and
// close delivers the tail before returning.
func TestRelayDeliversInOrderInFewBatches(t *testing.T) {
	var mu sync.Mutex
	var batches [][]any
	r := newRelay(&eventBatcher{}, func(m tea.Msg) {
		mu.Lock()
		batches = append(batches, m.(eventsMsg).events2())
		mu.Unlock()
	}, func(items []any) tea.Msg { return eventsMsg{events: toEvents(items)} }, 20*time.Millisecond)
	const n = 5000
	for i := range n {
		r.push(evolve.CandidateScored{Candidate: evolve.CandidateInfo{ID: itoa(i)}, Evaluation: i})
		if i%50 == 0 {
			r.push(evolve.CandidateProgress{ID: "x", Fraction: float64(i) / n})
		}
		if i%1000 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	r.push(evolve.Finished{Reason: "generations"})
	r.close()
	r.push(evolve.Log{Message: "after close"}) // ignored
	mu.Lock()
	defer mu.Unlock()
	next := 0
	var last any
	for _, b := range batches {
		for _, it := range b {
			if sc, ok := it.(evolve.CandidateScored); ok {
				if sc.Evaluation != next {
					t.Fatalf("event %d out of order, want %d", sc.Evaluation, next)
				}
				next++
			}
			last = it
		}
	}
	if next != n {
		t.Fatalf("%d of %d events delivered", next, n)
	}
	if _, ok := last.(evolve.Finished); !ok {
		t.Fatalf("last item %+v", last)
	}
	if len(batches) > 100 {
		t.Fatalf("%d batches for a burst", len(batches))
	}
}

func (m eventsMsg) events2() []any {
	out := make([]any, len(m.events))
	for i, e := range m.events {
		out[i] = e
	}
	return out
}

func toEvents(items []any) []evolve.Event {
	out := make([]evolve.Event, 0, len(items))
	for _, it := range items {
		out = append(out, it.(evolve.Event))
	}
	return out
}

func TestSenderQueuesUntilAttached(t *testing.T) {
	var s sender
	s.Send(1)
	s.Send(2)
	var got []tea.Msg
	s.attach(func(m tea.Msg) { got = append(got, m) })
	s.Send(3)
	if len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("%v", got)
	}
}
