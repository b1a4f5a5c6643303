package testkit

import (
	"sync"
	"testing"
	"time"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	c := NewClock(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now = %v, want %v", got, t0)
	}
	c.Advance(90 * time.Second)
	if got := c.Now(); !got.Equal(t0.Add(90 * time.Second)) {
		t.Fatalf("after Advance(90s): %v", got)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { c.Advance(time.Second); c.Now() })
	}
	wg.Wait()
	if got := c.Now(); !got.Equal(t0.Add(98 * time.Second)) {
		t.Fatalf("after eight concurrent Advance(1s): %v", got)
	}
}

func TestClockHoldsTheNextCallerOfNow(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	c := NewClock(t0)
	paused, release := c.HoldNextNow()
	got := make(chan time.Time)
	go func() { got <- c.Now() }()
	<-paused
	// The held caller read the time before it was held: moving the clock
	// now does not change what it returns, and others are not held.
	c.Advance(time.Minute)
	if now := c.Now(); !now.Equal(t0.Add(time.Minute)) {
		t.Fatalf("a second caller got %v", now)
	}
	select {
	case v := <-got:
		t.Fatalf("the held caller returned %v before release", v)
	default:
	}
	release()
	if v := <-got; !v.Equal(t0) {
		t.Fatalf("the held caller got %v, want %v", v, t0)
	}
}
