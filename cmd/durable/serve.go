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

// runServe starts the testserver, prints its base URL as the first line of
// stdout, and serves until ctx is cancelled (SIGINT / SIGTERM).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
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
