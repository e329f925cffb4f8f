// Command otel shows what operators of a service built on durable see in
// OpenTelemetry: a Writer appends events and a Reader tails them through a
// server that fails a few requests, and the stdout exporters print the
// spans (one per batch and per read, with the retries as events) and then
// the metrics.
//
//	go run ./examples/otel                             # embedded test server
//	go run ./examples/otel -url http://127.0.0.1:4437  # a real server
//
// With no -url it starts an in-process testserver that drops two append
// responses after applying them and answers one read with 503, so the
// retries show in the spans (durable.retry events) and in
// durable.client.retries. Every request carries the W3C trace context of
// its batch's or read's span (the traceparent header).
//
// The last line is the verdict:
//
//	otel: 200 events written and read; 3 retries
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/durablego/durable"
	durableotel "github.com/durablego/durable/otel"
	"github.com/durablego/durable/testserver"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Event is what the Writer appends and the Reader reads.
type Event struct {
	N int `json:"n"`
}

// config is the command line.
type config struct {
	URL    string // server URL; "" = embedded testserver with faults
	Stream string // stream name; "" = a fresh one
	Events int
}

// parseFlags parses the command line (without the program name).
func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("otel", flag.ContinueOnError)
	fs.StringVar(&cfg.URL, "url", "", "Durable Streams server URL (default: an embedded test server); a URL without a path gets /v1/stream/")
	fs.StringVar(&cfg.Stream, "stream", "", "stream to create (default: a fresh name)")
	fs.IntVar(&cfg.Events, "events", 200, "events to append and read")
	return cfg, fs.Parse(args)
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2) // the flag package said why
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "otel:", err)
		stop()
		os.Exit(1)
	}
}

// providers are the SDK's meter and tracer providers on the stdout
// exporters, writing to out.
type providers struct {
	mp *sdkmetric.MeterProvider
	tp *sdktrace.TracerProvider
}

func newProviders(out io.Writer) (*providers, error) {
	te, err := stdouttrace.New(stdouttrace.WithWriter(out), stdouttrace.WithPrettyPrint())
	if err != nil {
		return nil, err
	}
	me, err := stdoutmetric.New(stdoutmetric.WithWriter(out), stdoutmetric.WithPrettyPrint())
	if err != nil {
		return nil, err
	}
	return &providers{
		// The spans are printed when the provider shuts down, after the
		// run; the metrics once, when it shuts down too (the periodic
		// reader's interval is longer than the run).
		tp: sdktrace.NewTracerProvider(sdktrace.WithBatcher(te)),
		mp: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(me, sdkmetric.WithInterval(time.Hour)))),
	}, nil
}

// shutdown flushes the spans, then the metrics, to the exporters.
func (p *providers) shutdown(ctx context.Context) error {
	return errors.Join(p.tp.Shutdown(ctx), p.mp.Shutdown(ctx))
}

// run appends cfg.Events events and reads them back with the exporters
// writing to out, flushes the exporters and prints the verdict.
func run(ctx context.Context, cfg config, out io.Writer) error {
	if cfg.Events < 1 {
		return errors.New("need at least one event")
	}
	prov, err := newProviders(out)
	if err != nil {
		return err
	}
	// The plugin: a hook of the Client, recording with the providers.
	tel, err := durableotel.New(
		durableotel.WithMeterProvider(prov.mp),
		durableotel.WithTracerProvider(prov.tp),
		durableotel.WithPropagator(propagation.TraceContext{}),
	)
	if err != nil {
		return err
	}
	retries := &retryCount{}
	read, err := exercise(ctx, cfg, durable.WithHooks(tel, retries))
	if err := errors.Join(err, tel.Close(), prov.shutdown(context.WithoutCancel(ctx))); err != nil {
		return err
	}
	fmt.Fprintf(out, "otel: %d events written and read; %d retries\n", read, retries.n.Load())
	return nil
}

// retryCount is a hook of its own beside the plugin: it counts the
// retries, for the verdict.
type retryCount struct{ n atomic.Int64 }

// OnRetry counts a retry (not the end of an outage).
func (r *retryCount) OnRetry(ev durable.RetryEvent) {
	if !ev.Recovered {
		r.n.Add(1)
	}
}

// exercise writes cfg.Events events with a Writer and reads them back
// with a Reader, on a Client with opts; it returns how many it read.
func exercise(ctx context.Context, cfg config, opts ...durable.Option) (int, error) {
	base, stream := cfg.URL, cfg.Stream
	if stream == "" {
		stream = fmt.Sprintf("otel-%d", time.Now().UnixNano())
	}
	var srv *testserver.Server
	if base == "" {
		srv = testserver.New()
		defer srv.Close()
		base = srv.StreamURL("")
		srv.InjectFault(testserver.Fault{Path: stream, Method: http.MethodPost, Drop: true, AfterApply: true, Count: 2})
		srv.InjectFault(testserver.Fault{Path: stream, Method: http.MethodGet, Status: http.StatusServiceUnavailable, Count: 1})
	}
	client, err := durable.NewClient(base, opts...)
	if err != nil {
		return 0, err
	}
	defer client.CloseIdleConnections()
	if _, err := client.Create(ctx, stream, durable.CreateOptions{ContentType: "application/json"}); err != nil {
		return 0, fmt.Errorf("create stream: %w", err)
	}
	if srv == nil && cfg.Stream == "" { // a stream of our own on a real server: leave nothing behind
		defer client.Delete(context.WithoutCancel(ctx), stream)
	}

	w, err := durable.NewWriter(client, stream, durable.JSONCodec[Event]{})
	if err != nil {
		return 0, err
	}
	for n := range cfg.Events {
		if err := w.Write(ctx, Event{N: n}); err != nil {
			w.Close(ctx)
			return 0, err
		}
	}
	if err := w.Close(ctx); err != nil {
		return 0, err
	}

	r, err := durable.NewReader(client, stream, durable.JSONCodec[Event]{}, durable.WithLive(durable.LiveNone), durable.WithManualCommit())
	if err != nil {
		return 0, err
	}
	defer r.Close(ctx)
	read := 0
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, durable.ErrCaughtUp) {
			break
		}
		if err != nil {
			return 0, err
		}
		if m.Value.N != read {
			return 0, fmt.Errorf("read event %d, want %d", m.Value.N, read)
		}
		read++
	}
	if read != cfg.Events {
		return read, fmt.Errorf("read %d events, wrote %d", read, cfg.Events)
	}
	return read, nil
}
