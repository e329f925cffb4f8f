// Command worker is a process of the chaos run (see package
// internal/testsupport/chaos): a writer or a reader of one stream that the supervisor
// starts, kills with SIGKILL and restarts.
//
//	worker -mode writer -url BASE -stream NAME -id W -dir STATE [-rate N] [-batch N] [-inflight N] [-timeout D]
//	worker -mode reader -url BASE -stream NAME -id R -dir STATE [-live long-poll|sse|auto] [-timeout D]
//
// All state lives in STATE under the worker's ID: a writer's epoch store
// (ID.offsets) and ack log (ID.acks), a reader's offset store (ID.offsets)
// and handled log (ID.handled). SIGTERM stops a writer gracefully (its
// Writer is flushed and closed, every acknowledgement logged) and a reader
// at once. A reader exits 0 when the stream is closed and fully handled.
//
// On stdout a worker prints one line per event the supervisor counts:
// "retry <error>" for every retry of a request, and "done <summary>" once
// at a clean end. Errors go to stderr with a non-zero exit status.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/durablego/durable"
)

type config struct {
	mode     string
	url      string
	stream   string
	id       string
	dir      string
	rate     float64
	live     string
	timeout  time.Duration
	batch    int
	inflight int
}

func main() {
	var c config
	flag.StringVar(&c.mode, "mode", "", "writer or reader")
	flag.StringVar(&c.url, "url", "", "server base URL")
	flag.StringVar(&c.stream, "stream", "chaos", "stream name")
	flag.StringVar(&c.id, "id", "", "worker ID (producer ID of a writer, store key of a reader)")
	flag.StringVar(&c.dir, "dir", "", "state directory")
	flag.Float64Var(&c.rate, "rate", 30, "writer: events per second")
	flag.StringVar(&c.live, "live", "long-poll", "reader: long-poll, sse or auto")
	flag.DurationVar(&c.timeout, "timeout", time.Second, "the Client's WithRequestTimeout (each append attempt, each catch-up read)")
	flag.IntVar(&c.batch, "batch", 1000, "writer: the messages of WithMaxBatch")
	flag.IntVar(&c.inflight, "inflight", 4, "writer: WithMaxInFlight")
	flag.Parse()
	if c.url == "" || c.id == "" || c.dir == "" {
		fmt.Fprintln(os.Stderr, "worker: -url, -id and -dir are required")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch c.mode {
	case "writer":
		err = runWriter(ctx, c)
	case "reader":
		err = runReader(ctx, c)
	default:
		err = fmt.Errorf("unknown -mode %q", c.mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker %s: %v\n", c.id, err)
		os.Exit(1)
	}
}

func (c config) path(ext string) string { return filepath.Join(c.dir, c.id+"."+ext) }

// out serialises the lines the supervisor reads.
var outMu sync.Mutex

func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// newClient returns a Client whose own retries are quick (the supervisor's
// outages last a second or two) and whose requests time out after
// c.timeout: shorter than the longest server freeze, so that a request the
// server applies after a freeze has already been given up and retried.
func newClient(c config) (*durable.Client, error) {
	return durable.NewClient(c.url, durable.WithRequestTimeout(c.timeout), durable.WithHooks(retrySay{}), durable.WithRetry(durable.RetryPolicy{
		Initial:    50 * time.Millisecond,
		Max:        500 * time.Millisecond,
		Multiplier: 2,
		Jitter:     0.2,
		MaxElapsed: 30 * time.Second,
	}))
}

// retrySay reports every retry of the Client, its Reader's and its
// Writer's to the supervisor: "retry reader", "retry writer", or the
// operation of a call of the Client's own.
type retrySay struct{}

func (retrySay) OnRetry(ev durable.RetryEvent) {
	if ev.Recovered {
		return
	}
	who := map[string]string{"read": "reader", "write": "writer"}[ev.Op]
	if who == "" {
		who = ev.Op
	}
	say("retry %s attempt=%d wait=%s: %v", who, ev.Attempt, ev.Wait, ev.Err)
}
