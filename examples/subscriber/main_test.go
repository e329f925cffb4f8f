package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/durablego/durable"
	"github.com/durablego/durable/subscription"
	"github.com/durablego/durable/testserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	t.Parallel()
	ext := testserver.New(testserver.WithSubscriptions(true))
	t.Cleanup(ext.Close)
	tests := []struct {
		name string
		cfg  config
	}{
		{"embedded", config{Streams: 20, Orders: 30, Workers: 3, Spread: 500 * time.Millisecond}},
		{"real server by URL", config{URL: ext.URL(), Streams: 10, Orders: 20, Workers: 2, Spread: 300 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			res, err := run(context.Background(), tt.cfg, &out)
			require.NoError(t, err, out.String())
			assert.Equal(t, tt.cfg.Streams*tt.cfg.Orders, res.Orders)
			assert.Zero(t, res.Lost)
			assert.Zero(t, res.OutOfOrder)
			assert.GreaterOrEqual(t, res.Handled, res.Orders)
			assert.Positive(t, res.Failed, "some orders fail once")
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			assert.Regexp(t, `^subscriber: \d+ orders on \d+ streams, 0 lost, 0 out of order \(\d+ handled: \d+ again after \d+ handler errors\)$`, lines[len(lines)-1])
			assert.Contains(t, out.String(), "restart:     worker-1 stops midway")
		})
	}
	// A run on a real server leaves nothing behind.
	c, err := durable.NewClient(ext.URL() + "/v1/stream/")
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	_, err = c.Head(context.Background(), "wake/orders")
	require.ErrorIs(t, err, durable.ErrNotFound)
}

// TestTally checks that the verdict is not vacuous: a lost order, an
// order handled out of order and a failing order are all counted.
func TestTally(t *testing.T) {
	t.Parallel()
	tl := newTally([]string{"orders/007", "orders/001"}, 4)
	h := func(s string, n int) error {
		return tl.handle(context.Background(), subscription.Message[Order]{Message: durable.Message[Order]{Value: Order{Stream: s, N: n}}, Stream: s})
	}
	require.NoError(t, h("orders/001", 1))
	require.NoError(t, h("orders/001", 3)) // skips 2: out of order
	require.NoError(t, h("orders/001", 4))
	require.ErrorIs(t, h("orders/007", 2), errFlaky)
	require.NoError(t, h("orders/007", 1))
	require.NoError(t, h("orders/007", 2))
	res := tl.result()
	assert.Equal(t, 8, res.Orders)
	assert.Equal(t, 1, res.OutOfOrder)
	assert.Equal(t, 1, res.Failed)
	assert.Equal(t, 3, res.Lost) // 001/2, 007/3, 007/4
	assert.Equal(t, 5, res.Handled)
}

// TestRunCancel stops a run midway (Ctrl-C): it returns promptly with the
// context's error and leaves no goroutine behind (goleak).
func TestRunCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := run(ctx, config{Streams: 5, Orders: 1000, Workers: 2, Spread: 10 * time.Second}, &bytes.Buffer{})
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	assert.Less(t, time.Since(began), 10*time.Second)
}
