package durable

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pipelineGoroutines returns how many goroutines are running a method of
// the pipeline at address p (as %p prints it): its senders and its linger
// goroutine.
func pipelineGoroutines(p string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "durable.(*pipeline).") && (strings.Contains(g, "("+p+",") || strings.Contains(g, "("+p+")")) {
			count++
		}
	}
	return count
}

// TestWriterIdleHasNoGoroutine: a Writer runs no goroutine while it has
// nothing to send: not before its first write, not once its last batch
// has landed; a write starts one again (the linger goroutine while a batch
// lingers, a sender while it is in flight).
func TestWriterIdleHasNoGoroutine(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	w := newTestWriter[wevent](t, e, WithLinger(time.Hour))
	p := fmt.Sprintf("%p", w.p)
	ctx := ctxT(t, 10*time.Second)
	idle := func(msg string) {
		t.Helper()
		require.Eventually(t, func() bool { return pipelineGoroutines(p) == 0 }, 10*time.Second, time.Millisecond, msg)
	}
	require.Zero(t, pipelineGoroutines(p), "a new Writer runs no goroutine")
	for round := range 3 {
		require.NoError(t, w.Write(ctx, wevent{N: 2 * round}))
		require.Eventually(t, func() bool { return pipelineGoroutines(p) == 1 }, 10*time.Second, time.Millisecond,
			"round %d: a lingering batch has its linger goroutine", round)
		require.NoError(t, w.Flush(ctx))
		idle(fmt.Sprintf("round %d: goroutines left after Flush", round))
		_, err := w.WriteSync(ctx, wevent{N: 2*round + 1})
		require.NoError(t, err)
		idle(fmt.Sprintf("round %d: goroutines left after WriteSync", round))
	}
	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, 6)
	require.NoError(t, w.Close(ctx))
	require.Zero(t, pipelineGoroutines(p))
}

// TestWriterDroppedIsReclaimed: a Writer dropped without Close does not
// leak its goroutines nor lose what it lingered on: once the Writer is
// garbage collected, its pipeline sends what was written and stops.
func TestWriterDroppedIsReclaimed(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	var p string
	func() {
		w, err := NewWriter[wevent](e.c, e.stream, WithLinger(time.Hour))
		require.NoError(t, err)
		require.NoError(t, w.Write(context.Background(), wevent{N: 1}))
		p = fmt.Sprintf("%p", w.p)
	}()
	require.Eventually(t, func() bool { return pipelineGoroutines(p) == 1 }, 10*time.Second, time.Millisecond, "the batch lingers")
	require.Eventually(t, func() bool {
		runtime.GC()
		return pipelineGoroutines(p) == 0
	}, 10*time.Second, 10*time.Millisecond, "the linger goroutine of a dropped Writer still runs")
	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, 1, "what was written before the drop is sent")
}

// TestWriterMissingStreamFailsNextWrite: once the first batch to a
// missing stream has failed, the next Write fails at once with its error
// (sticky), instead of only Flush or Close reporting it.
func TestWriterMissingStreamFailsNextWrite(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	require.NoError(t, e.c.Delete(context.Background(), e.stream))
	w := newTestWriter[wevent](t, e)
	ctx := ctxT(t, 10*time.Second)
	a, err := w.WriteAsync(ctx, wevent{N: 1})
	require.NoError(t, err)
	_, err = a.Wait(ctx)
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, w.Write(ctx, wevent{N: 2}), ErrNotFound)
	require.ErrorIs(t, w.TryWrite(wevent{N: 3}), ErrNotFound)
	require.ErrorIs(t, w.Flush(ctx), ErrNotFound)
}
