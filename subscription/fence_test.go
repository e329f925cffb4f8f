package subscription

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable/testserver"
)

// events records what a worker's observer sees, in order.
type events struct {
	nopObserver
	mu  sync.Mutex
	log []string
	ch  chan string
}

func newEvents() *events { return &events{ch: make(chan string, 1000)} }

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
	select {
	case e.ch <- s:
	default:
	}
}

func (e *events) claimed(w *Wake) { e.add("claimed " + w.ID) }
func (e *events) acked(w *Wake, acks []Ack, done bool) {
	e.add(fmt.Sprintf("acked %s %d %v", w.ID, len(acks), done))
}
func (e *events) lost(w *Wake, err error) { e.add(fmt.Sprintf("lost %s %v", w.ID, err)) }
func (e *events) expired(w *Wake)         { e.add("expired " + w.ID) }

func (e *events) waitFor(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s := <-e.ch:
			if strings.HasPrefix(s, prefix) {
				return s
			}
		case <-deadline:
			t.Fatalf("no %q event; saw %v", prefix, e.snapshot())
		}
	}
}

func (e *events) snapshot() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// TestWorkerFencedStopsTouching: when the server hands the wake to
// another worker (the lease ran out on the server's clock), the worker's
// next heartbeat is refused with ErrFenced, its handler's context ends,
// and it sends nothing more for that wake.
func TestWorkerFencedStopsTouching(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{now: time.Now()}
	e := newEnv(t, testserver.WithClock(clk.Now))
	e.createJSON(t, "fe/a")
	s := e.pullWake(t, "fe/*", 2*time.Second)
	ev := newEvents()
	inHandler := make(chan struct{})
	handlerDone := make(chan error, 1)
	var calls sync.Map
	w, err := NewWorker(e.c, s.ID(), func(ctx context.Context, m Message[item]) error {
		if _, again := calls.LoadOrStore(m.Value.Seq, true); again {
			t.Errorf("message %d handled twice by the fenced worker", m.Value.Seq)
		}
		if m.Value.Seq == 1 {
			close(inHandler)
			<-ctx.Done()
			handlerDone <- ctx.Err()
			return ctx.Err()
		}
		return nil
	}, withObserver(ev), WithPollInterval(time.Hour))
	require.NoError(t, err)
	stop := runWorker(t, w)
	tail := e.fill(t, []string{"fe/a"}, 3)["fe/a"]
	within(t, inHandler, "the handler was never called")
	claim := ev.waitFor(t, "claimed")

	clk.Add(3 * time.Second) // past the lease on the server's clock
	e.srv.RunTimers()
	intruder, err := s.Claim(testCtx(t), "intruder")
	require.NoError(t, err)

	lost := ev.waitFor(t, "lost")
	assert.Contains(t, lost, "wake fenced")
	select {
	case err := <-handlerDone:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("the fenced worker's handler context did not end")
	}
	// The intruder holds the lease undisturbed: the fenced worker sends
	// nothing more for its wake (no ack, no release).
	time.Sleep(300 * time.Millisecond)
	after := ev.snapshot()
	i := 0
	for after[i] != lost {
		i++
	}
	wakeID := strings.TrimPrefix(claim, "claimed ")
	for _, s := range after[i+1:] {
		assert.NotContains(t, s, wakeID, "event for the fenced wake after it was lost")
	}
	_, err = s.Ack(testCtx(t), intruder, true, Ack{Stream: "fe/a", Offset: tail})
	require.NoError(t, err, "the new holder's wake was not disturbed")
	require.NoError(t, stop())
	assert.EqualValues(t, 1, w.Stats().Fenced)
}

// TestTokenNeverPrinted: a wake's token does not show in fmt, slog, JSON
// or the errors of its requests.
func TestTokenNeverPrinted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	e.createJSON(t, "tk/a")
	s := e.pullWake(t, "tk/*", 0)
	e.appendJSON(t, "tk/a", 1)
	w, err := s.Claim(ctx, "w")
	require.NoError(t, err)
	secret := w.Token.Reveal()
	require.NotEmpty(t, secret)

	var out bytes.Buffer
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		fmt.Fprintf(&out, f+"\n", w)
		fmt.Fprintf(&out, f+"\n", *w)
		fmt.Fprintf(&out, f+"\n", w.Token)
	}
	fmt.Fprintln(&out, w.Token, *w)
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	logger.Info("wake", "wake", w, "token", w.Token, "value", *w)
	slog.New(slog.NewTextHandler(&out, nil)).Info("wake", "wake", w, "token", w.Token)
	b, err := json.Marshal(w)
	require.NoError(t, err)
	out.Write(b)
	// Errors of requests made with the token.
	_, err = s.Ack(ctx, w, false, Ack{Stream: "tk/a", Offset: "zzz"})
	require.Error(t, err)
	fmt.Fprintln(&out, err)
	require.NoError(t, s.Release(ctx, w))
	err = s.Release(ctx, w)
	require.ErrorIs(t, err, ErrFenced)
	fmt.Fprintf(&out, "%v %+v %#v\n", err, err, err)

	assert.NotContains(t, out.String(), secret)
	assert.Contains(t, out.String(), "[redacted]")
	assert.Equal(t, "subscription.Token{[redacted]}", fmt.Sprintf("%#v", w.Token))
	assert.Equal(t, secret, NewToken(secret).Reveal())
	assert.Equal(t, "", Token{}.String())
}
