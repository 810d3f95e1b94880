package evolve

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDispatchLimit: jobs start in order and never more than limit run at
// once, and the limit is reached.
func TestDispatchLimit(t *testing.T) {
	for _, limit := range []int{1, 2, 3} {
		var running, peak atomic.Int32
		var mu sync.Mutex
		var started []int
		jobs := []int{0, 1, 2, 3, 4, 5, 6, 7}
		err := dispatch(context.Background(), &Control{}, limit, jobs, func(j int) error {
			mu.Lock()
			started = append(started, j)
			mu.Unlock()
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if int(peak.Load()) != limit {
			t.Errorf("limit %d: %d ran at once", limit, peak.Load())
		}
		if limit == 1 && !slices.Equal(started, jobs) {
			t.Errorf("jobs started in order %v", started)
		}
		if len(started) != len(jobs) {
			t.Errorf("limit %d: %d of %d jobs ran", limit, len(started), len(jobs))
		}
	}
}

// TestDispatchCancel: after cancellation no job starts, the running ones
// are waited for, and the error is the context's even when a job failed.
func TestDispatchCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Int32
	var finished atomic.Bool
	err := dispatch(ctx, &Control{}, 2, []int{0, 1, 2, 3, 4, 5}, func(j int) error {
		ran.Add(1)
		if j == 1 {
			cancel()
			time.Sleep(20 * time.Millisecond)
			finished.Store(true)
			return errors.New("job 1 failed")
		}
		<-ctx.Done()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if !finished.Load() {
		t.Error("dispatch returned before a running job finished")
	}
	if ran.Load() != 2 {
		t.Errorf("%d jobs started, want the 2 running when cancelled", ran.Load())
	}
}

// TestDispatchError: a failing job does not stop the others; the first
// error is returned.
func TestDispatchError(t *testing.T) {
	var ran atomic.Int32
	first := errors.New("first")
	err := dispatch(context.Background(), &Control{}, 1, []int{0, 1, 2, 3}, func(j int) error {
		ran.Add(1)
		switch j {
		case 1:
			return first
		case 2:
			return errors.New("second")
		}
		return nil
	})
	if err != first || ran.Load() != 4 {
		t.Errorf("error %v after %d jobs, want %v after 4", err, ran.Load(), first)
	}
}

// TestDispatchPause: while paused no job starts; resuming lets them run;
// cancelling while paused returns at once. (A job already waiting for a
// free slot when Pause comes still starts: pausing is checked before the
// wait for a slot.)
func TestDispatchPause(t *testing.T) {
	ctl := &Control{}
	ctl.Pause()
	var ran atomic.Int32
	done := make(chan error)
	go func() {
		done <- dispatch(context.Background(), ctl, 1, []int{0, 1, 2}, func(int) error {
			ran.Add(1)
			return nil
		})
	}()
	time.Sleep(50 * time.Millisecond)
	if n := ran.Load(); n != 0 {
		t.Fatalf("%d jobs ran while paused", n)
	}
	ctl.Resume()
	select {
	case err := <-done:
		if err != nil || ran.Load() != 3 {
			t.Errorf("after resuming: %v, %d jobs", err, ran.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dispatch did not continue after Resume")
	}

	ctl.Pause()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- dispatch(ctx, ctl, 1, []int{0}, func(int) error { t.Error("a job ran while paused"); return nil })
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled while paused: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling a paused dispatch does not return")
	}
}
