package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"time"

	"github.com/durablego/durable/testserver"
)

func init() {
	register(command{
		name:    "serve",
		summary: "run a Durable Streams server (memory or --data-dir)",
		run:     runServe,
	})
}

const serveHelp = `Runs a Durable Streams server for development and tests: the SDK's
testserver, which implements the whole protocol (and passes the public server
conformance suite). It prints its base URL as the first line of stdout (streams
live under /v1/stream/ unless --prefix says otherwise) and serves until
SIGINT or SIGTERM.

Streams are kept in memory, or with --data-dir in a directory (an acknowledged
append is fsynced and survives a restart). --faults enables the HTTP
fault-injection and request-accounting API under /__ds/testserver/, for tests in
other processes (see the README, "Testing your code with testserver").

A web Test UI is served at /ui/ (its URL is printed on stderr; --ui=false
turns it off): it lists the streams, creates, closes and deletes them,
follows them live and appends to them. It lists streams from the
__registry__ stream the server keeps, one event per stream created or
deleted (--registry=false turns it off).

It is not a production server: it has no authentication, no retention or
compaction, no metrics, and keeps every stream of a directory in one process.
In production run a server built for it, such as the Durable Streams Caddy
server (durable-streams-server, from the durable-streams/durable-streams
repository) or another server that passes the public server conformance
suite, and point --server or $DURABLE_SERVER (and the SDK's NewClient) at it.`

// runServe starts the testserver, prints its base URL as the first line of
// stdout, and serves until ctx is cancelled (SIGINT / SIGTERM).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newCommandFlags("serve", "[flags]", serveHelp, stderr)
	addr := fs.String("addr", "127.0.0.1:4437", "listen address (host:port; port 0 picks a free port)")
	dataDir := fs.String("data-dir", "", "directory to keep streams in (default: memory only)")
	longPoll := fs.Duration("long-poll-timeout", testserver.DefaultLongPollTimeout, "how long a long-poll read waits for data")
	sseClose := fs.Duration("sse-close-interval", testserver.DefaultSSECloseInterval, "how long an SSE response stays open")
	prefix := fs.String("prefix", testserver.DefaultPrefix, "URL path prefix of streams")
	maxBody := fs.Int64("max-body", testserver.DefaultMaxBodySize, "largest accepted request body in bytes")
	chunk := fs.Int("chunk-limit", testserver.DefaultChunkLimit, "most stream bytes per read response")
	faults := fs.Bool("faults", false, "enable the fault-injection control API at /__ds/testserver/")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate (needs --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key for --tls-cert")
	h2c := fs.Bool("h2c", false, "also serve HTTP/2 without TLS (prior knowledge) beside HTTP/1.1; over TLS HTTP/2 is always offered")
	ordering := fs.Bool("producer-ordering", true, "let a producer's append that overtook earlier ones wait for them (false: answer it with a sequence gap at once, like a strictly first-come server)")
	orderGrace := fs.Duration("producer-order-grace", testserver.DefaultOrderGrace, "with --producer-ordering, how long such an append waits for earlier ones not yet received")
	subs := fs.Bool("subscriptions", false, "serve the subscription APIs under {prefix}__ds/ (pull-wake leases and signed webhooks, PROTOCOL §6–7)")
	loopbackHooks := fs.Bool("allow-loopback-webhooks", false, "with --subscriptions, accept webhook URLs on this machine (http(s)://localhost, 127.0.0.0/8, [::1]) for local development; private and other local-network addresses stay refused")
	var uf uiFlags
	uf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "durable serve: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	opts := []testserver.Option{
		testserver.WithLongPollTimeout(*longPoll),
		testserver.WithSSECloseInterval(*sseClose),
		testserver.WithPrefix(*prefix),
		testserver.WithMaxBodySize(*maxBody),
		testserver.WithChunkLimit(*chunk),
		testserver.WithFaultControl(*faults),
		testserver.WithProducerOrdering(*ordering, *orderGrace),
		testserver.WithUnencryptedHTTP2(*h2c),
		testserver.WithSubscriptions(*subs),
		testserver.WithLoopbackWebhooks(*loopbackHooks),
	}
	if *loopbackHooks && !*subs {
		fmt.Fprintln(stderr, "durable serve: --allow-loopback-webhooks needs --subscriptions")
		return errUsage
	}
	uiOpts, err := uf.options(*prefix)
	if err != nil {
		fmt.Fprintln(stderr, "durable serve:", err)
		return errUsage
	}
	opts = append(opts, uiOpts...)
	if (*tlsCert == "") != (*tlsKey == "") {
		fmt.Fprintln(stderr, "durable serve: --tls-cert and --tls-key go together")
		return errUsage
	}
	if *h2c && *tlsCert != "" {
		fmt.Fprintln(stderr, "durable serve: --h2c is for plain HTTP; over TLS HTTP/2 is negotiated by itself")
		return errUsage
	}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return err
		}
		opts = append(opts, testserver.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	}
	if *dataDir != "" {
		opts = append(opts, testserver.WithDataDir(*dataDir))
	}
	srv, err := testserver.Start(*addr, opts...)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, srv.URL())
	uf.announce(stderr, srv.URL())
	<-ctx.Done()
	done := make(chan struct{})
	go func() {
		srv.Close()
		close(done)
	}()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("shutdown timed out")
	}
}
