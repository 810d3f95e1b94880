package evolve

import "sync"

// Control pauses and resumes a running engine from another goroutine (the
// TUI's pause key). Pausing stops new candidates from starting; candidates
// already merging or evaluating finish. The zero value is ready to use.
type Control struct {
	mu     sync.Mutex
	paused bool
	wake   chan struct{} // closed on Resume
	notify func(paused bool)
}

// Pause stops the engine from starting new candidates.
func (c *Control) Pause() { c.set(true) }

// Resume lets the engine continue.
func (c *Control) Resume() { c.set(false) }

// Toggle flips between paused and running and returns the new state.
func (c *Control) Toggle() bool {
	c.mu.Lock()
	p := !c.paused
	c.mu.Unlock()
	c.set(p)
	return p
}

// Paused reports the current state.
func (c *Control) Paused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused
}

func (c *Control) set(p bool) {
	c.mu.Lock()
	if c.paused == p {
		c.mu.Unlock()
		return
	}
	c.paused = p
	if p {
		c.wake = make(chan struct{})
	} else if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
	notify := c.notify
	c.mu.Unlock()
	if notify != nil {
		notify(p)
	}
}

// wait blocks while paused; it returns early when done is closed.
func (c *Control) wait(done <-chan struct{}) {
	c.mu.Lock()
	wake := c.wake
	paused := c.paused
	c.mu.Unlock()
	if !paused || wake == nil {
		return
	}
	select {
	case <-wake:
	case <-done:
	}
}
