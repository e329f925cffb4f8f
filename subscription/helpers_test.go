package subscription

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

// childMain, when set (by the process tests), runs this test binary as a
// child process of a test instead of the tests, when the environment asks
// for it, and reports whether it did.
var childMain func() bool

func TestMain(m *testing.M) {
	if childMain != nil && childMain() {
		return
	}
	goleak.VerifyTestMain(m)
}

// env is a testserver with subscriptions on and a Client of it.
type env struct {
	srv *testserver.Server
	c   *durable.Client
}

func newEnv(t *testing.T, opts ...testserver.Option) *env {
	t.Helper()
	srv := testserver.New(append([]testserver.Option{testserver.WithSubscriptions(true), testserver.WithLoopbackWebhooks(true)}, opts...)...)
	t.Cleanup(srv.Close)
	c, err := durable.NewClient(srv.URL() + "/v1/stream/")
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return &env{srv: srv, c: c}
}

var nameSeq atomic.Int64

// name returns a fresh name with prefix.
func name(prefix string) string { return fmt.Sprintf("%s%d", prefix, nameSeq.Add(1)) }

// ctx returns a context that ends with the test (or after a minute).
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// createJSON creates JSON streams.
func (e *env) createJSON(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		_, err := e.c.Create(testCtx(t), p, durable.CreateOptions{ContentType: "application/json"})
		require.NoError(t, err, p)
	}
}

// appendJSON appends v to stream and returns the tail after it.
func (e *env) appendJSON(t *testing.T, stream string, v any) durable.Offset {
	t.Helper()
	r, err := e.c.AppendJSON(testCtx(t), stream, v, durable.AppendOptions{})
	require.NoError(t, err)
	return r.NextOffset
}

// pullWake creates a pull-wake subscription over pattern with a fresh
// wake stream and returns it.
func (e *env) pullWake(t *testing.T, pattern string, ttl time.Duration) *Subscription {
	t.Helper()
	wake := name("wake/w")
	e.createJSON(t, wake)
	s, err := Open(e.c, name("sub"))
	require.NoError(t, err)
	_, created, err := s.Create(testCtx(t), Config{Type: PullWake, Pattern: pattern, WakeStream: wake, LeaseTTL: ttl})
	require.NoError(t, err)
	require.True(t, created)
	return s
}

// within waits for ch to deliver or close, failing the test after 20 s.
func within[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal(what)
	}
}
