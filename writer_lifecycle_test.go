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

// dispatchRunning reports whether the dispatch goroutine of the pipeline
// at address p (as %p prints it) is running.
func dispatchRunning(p string) bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Contains(string(buf[:n]), "durable.(*pipeline).loop("+p+")")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestWriterDroppedIsReclaimed: a Writer dropped without Close does not
// leak its goroutine: once the Writer is garbage collected, its pipeline
// sends what was written and stops.
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
	require.Eventually(t, func() bool { return dispatchRunning(p) }, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		runtime.GC()
		return !dispatchRunning(p)
	}, 10*time.Second, 10*time.Millisecond, "the dispatch goroutine of a dropped Writer still runs")
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
