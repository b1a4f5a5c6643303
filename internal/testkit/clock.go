package testkit

import (
	"sync"
	"time"
)

// Clock is a time source the test moves by hand, safe for concurrent use:
// pass its Now where code takes a now func() time.Time, so expiry, backoff
// and rotation are tested without sleeping.
type Clock struct {
	mu     sync.Mutex
	t      time.Time
	gate   chan struct{} // closed to release a held caller of Now
	paused chan struct{} // closed once a caller of Now is held
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time. After HoldNextNow, the next caller is held
// inside Now until released.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	t, gate, paused := c.t, c.gate, c.paused
	c.gate, c.paused = nil, nil
	c.mu.Unlock()
	if gate != nil {
		close(paused)
		<-gate
	}
	return t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// HoldNextNow makes the next call of Now block until release is called;
// paused is closed once a caller is held. It stages a race at the exact
// point where the code under test reads the time.
func (c *Clock) HoldNextNow() (paused <-chan struct{}, release func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate, c.paused = make(chan struct{}), make(chan struct{})
	gate := c.gate
	return c.paused, func() { close(gate) }
}
