package subscription

import (
	"context"
	"sync"
)

// capacity counts the streams a Worker (or Receiver) handles at once,
// across every wake it holds, up to WithConcurrency. A Worker claims a
// lease only while it has room, so that the leases of sharded
// subscriptions spread over the workers instead of piling up on the first
// one that asks.
type capacity struct {
	mu    sync.Mutex
	used  int
	max   int
	freed chan struct{} // closed (and replaced) when a slot is released
}

func newCapacity(n int) *capacity { return &capacity{max: n, freed: make(chan struct{})} }

// acquire takes a slot, waiting for one until ctx ends.
func (c *capacity) acquire(ctx context.Context) error { return c.wait(ctx, true) }

// room waits until a slot is free (without taking it) or ctx ends.
func (c *capacity) room(ctx context.Context) error { return c.wait(ctx, false) }

// wait waits for a free slot, and takes it when take is set.
func (c *capacity) wait(ctx context.Context, take bool) error {
	for {
		c.mu.Lock()
		if c.used < c.max {
			if take {
				c.used++
			}
			c.mu.Unlock()
			return nil
		}
		freed := c.freed
		c.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives a slot back.
func (c *capacity) release() {
	c.mu.Lock()
	c.used--
	close(c.freed)
	c.freed = make(chan struct{})
	c.mu.Unlock()
}
