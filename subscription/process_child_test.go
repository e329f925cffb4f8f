//go:build subprocess

package subscription

// Process tests: worker PROCESSES (this test binary, started again as a
// child) share one subscription of a real server, durable serve
// --subscriptions or the Node reference server, while a writer appends;
// some are SIGKILLed at random and one is SIGSTOPped past its lease. Run by
// .ci/steps/70-subscriptions.sh:
//
//	DURABLE_INTEROP_DIR=dir-with-node_modules-and-node-server.mjs \
//	DURABLE_INTEROP_NODE=$(command -v node) DURABLE_INTEROP_DURABLE=path/to/durable \
//	go test -race -tags subprocess -run TestProcess ./subscription/
//
// Each worker prints one line per event on stdout:
//
//	R 0                              ready: SIGTERM is handled from now on
//	C <gen> <stream>=<acked> ...     claimed: the acked offset of every link
//	H <gen> <stream> <seq> <offset> <skip> <t>   handled; t: when the handler was called (Unix ns)
//	A <gen> <done> <stream>=<offset> ...     an ack the server accepted
//	L <gen> <kind> <t>               the server refused the wake (kind: fenced, token, gone) at t
//	E <gen>                          the lease ran out on this side

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/durablego/durable"
)

func init() { childMain = processChild }

// Child process environment.
const (
	envChild = "DSUB_CHILD" // "worker"
	envBase  = "DSUB_BASE"  // stream base URL
	envSubID = "DSUB_ID"
	envName  = "DSUB_NAME"
)

// processChild runs a worker until SIGTERM when the environment asks.
func processChild() bool {
	if os.Getenv(envChild) != "worker" {
		return false
	}
	ctx, stop := signalContext()
	defer stop()
	c, err := durable.NewClient(os.Getenv(envBase))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := &lineOut{w: os.Stdout}
	out.printf("R 0")
	w, err := NewWorker(c, os.Getenv(envSubID), func(ctx context.Context, m Message[item]) error {
		at := time.Now().UnixNano()
		out.printf("H %d %s %d %s %d %d", m.Generation, m.Stream, m.Value.Seq, m.Position.Offset, m.Position.Skip, at)
		return nil
	}, WithName(os.Getenv(envName)), WithConcurrency(8), WithAckInterval(50*time.Millisecond),
		WithPollInterval(500*time.Millisecond), withObserver(&lineObserver{out: out}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// lineOut writes whole lines, one write each (a SIGKILL loses none that
// was written).
type lineOut struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *lineOut) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = fmt.Fprintf(o.w, format+"\n", args...)
}

// lineObserver prints a worker's wake events.
type lineObserver struct {
	nopObserver
	out *lineOut
}

func (o *lineObserver) claimed(w *Wake) {
	var b strings.Builder
	for _, l := range w.Links {
		fmt.Fprintf(&b, " %s=%s", l.Path, l.Acked)
	}
	o.out.printf("C %d%s", w.Generation, b.String())
}

func (o *lineObserver) acked(w *Wake, acks []Ack, done bool) {
	var b strings.Builder
	for _, a := range acks {
		fmt.Fprintf(&b, " %s=%s", a.Stream, a.Offset)
	}
	o.out.printf("A %d %v%s", w.Generation, done, b.String())
}

func (o *lineObserver) lost(w *Wake, err error) {
	kind := "other"
	switch {
	case errors.Is(err, ErrFenced):
		kind = "fenced"
	case errors.Is(err, ErrTokenInvalid), errors.Is(err, ErrTokenExpired):
		kind = "token"
	case errors.Is(err, ErrNotFound):
		kind = "gone"
	}
	o.out.printf("L %d %s %d", w.Generation, kind, time.Now().UnixNano())
}

func (o *lineObserver) expired(w *Wake) { o.out.printf("E %d", w.Generation) }
