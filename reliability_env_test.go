package durable

// Shared helpers of the reliability tests (fault matrix, hostile servers,
// secrets, TLS): a testserver behind a TCP fault proxy, a Client that goes
// through the proxy and one that goes straight to the server, and a
// recorder of every error string and log line a test produces.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/faultproxy"
	"github.com/durablego/durable/internal/testsupport/secrettest"
	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// relSecrets are the credentials a secrets-mode environment attaches to
// every request: static header, header function, URL userinfo and URL
// query (see secrettest for each one's place). None of them may appear in
// an error or a log line.
var relSecrets = secrettest.Tokens

// relPolicy is the retry policy of matrix clients: quick, unlimited
// attempts, bounded by MaxElapsed so that a permanent failure ends.
func relPolicy(maxElapsed time.Duration) RetryPolicy {
	return RetryPolicy{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond, Multiplier: 2, Jitter: 0.2, MaxElapsed: maxElapsed}
}

// relLog is a concurrency-safe buffer for a slog text handler.
type relLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *relLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *relLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// logger returns a Debug-level logger writing to l.
func (l *relLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// relEnv is one private environment: a testserver (optionally on a data
// directory, restartable on the same port) behind a fault proxy.
type relEnv struct {
	t      *testing.T
	dir    string // data directory ("" = memory)
	addr   string // server address, stable across restarts
	proxy  *faultproxy.Proxy
	direct *Client // straight to the server, no faults, for setup and checks
	log    *relLog
	secret bool // clients carry relSecrets

	mu      sync.Mutex
	srv     *testserver.Server
	srvOpts []testserver.Option // options of every (re)start
}

// newRelEnv starts a server (on a data directory when persistent) and a
// proxy in front of it; both are closed when the test ends.
func newRelEnv(t *testing.T, persistent, secret bool) *relEnv {
	t.Helper()
	return newRelEnvWith(t, persistent, secret)
}

// newRelEnvWith is newRelEnv with server options.
func newRelEnvWith(t *testing.T, persistent, secret bool, opts ...testserver.Option) *relEnv {
	t.Helper()
	e := &relEnv{t: t, log: &relLog{}, secret: secret}
	if persistent {
		e.dir = t.TempDir()
		opts = append(opts, testserver.WithDataDir(e.dir), testserver.WithoutSync())
	}
	e.srvOpts = opts
	e.srv = testserver.New(opts...)
	e.addr = strings.TrimPrefix(e.srv.URL(), "http://")
	p, err := faultproxy.New(e.addr)
	require.NoError(t, err)
	e.proxy = p
	t.Cleanup(func() {
		_ = p.Close()
		e.server().Close()
	})
	e.direct = e.client(e.srv.URL()+testserver.DefaultPrefix, WithRetry(fastRetry()))
	return e
}

// server returns the current server.
func (e *relEnv) server() *testserver.Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv
}

// stopServer closes the server (the proxy stays up, so clients see their
// connections reset while it is down).
func (e *relEnv) stopServer() { e.server().Close() }

// startServer starts a server again on the same address and data directory.
func (e *relEnv) startServer() {
	s, err := testserver.Start(e.addr, e.srvOpts...)
	if err != nil {
		e.t.Errorf("restart server on %s: %v", e.addr, err)
		return
	}
	e.mu.Lock()
	e.srv = s
	e.mu.Unlock()
}

// viaProxy returns the base URL of the proxy, with userinfo in secret mode.
func (e *relEnv) viaProxy() string {
	return e.proxy.URL() + testserver.DefaultPrefix
}

// client returns a Client on base whose idle connections are closed when
// the test ends. In secret mode it carries every relSecrets credential and
// the log recorder.
func (e *relEnv) client(base string, opts ...Option) *Client {
	e.t.Helper()
	all := []Option{WithLogger(e.log.logger())}
	if strings.Contains(base, ".invalid") {
		all = append(all, WithHTTPClient(offlineDNSClient()))
	}
	if e.secret {
		all = append(all, relSecretOptions()...)
	}
	c, err := NewClient(base, withDefaults(all, opts...)...)
	require.NoError(e.t, err)
	e.t.Cleanup(c.hc.CloseIdleConnections)
	return c
}

// offlineDNSClient resolves names with a resolver that has no server to
// ask: a lookup fails at once with a real *net.DNSError, the way an
// unresolvable name does, without sending a query or waiting on the
// machine's resolver (whose time-outs made the DNS cells slow under load).
func offlineDNSClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Resolver: &net.Resolver{PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no DNS server in tests")
		}}}
	tr.DialContext = d.DialContext
	return &http.Client{Transport: tr}
}

// relSecretOptions attach the header secrets.
func relSecretOptions() []Option {
	return []Option{
		WithHeader("Authorization", "Bearer "+relSecrets[0]),
		WithHeader("X-Api-Key", relSecrets[2]),
		WithHeaderFunc(func(context.Context) (http.Header, error) {
			return http.Header{"Authorization": {"Bearer " + relSecrets[1]}}, nil
		}),
	}
}

// stream returns how the client under test names stream name: the bare
// name, or in secret mode a full URL on base with userinfo and secret query
// parameters.
func (e *relEnv) stream(base, name string) string {
	if !e.secret {
		return name
	}
	u, err := secrettest.StreamURL(base, name)
	require.NoError(e.t, err)
	return u
}

// content reads the whole stream straight from the server.
func (e *relEnv) content(ctx context.Context, name string) ([]byte, error) {
	var out []byte
	off := OffsetStart
	for range 1000 {
		ch, err := e.direct.Read(ctx, name, ReadOptions{Offset: off})
		if err != nil {
			return nil, err
		}
		out = append(out, ch.Data...)
		if ch.UpToDate || ch.NextOffset == off {
			return out, nil
		}
		off = ch.NextOffset
	}
	return nil, errors.New("stream never reached up-to-date")
}

// messages reads a JSON stream straight from the server, one raw value per
// message.
func (e *relEnv) messages(ctx context.Context, name string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	off := OffsetStart
	for range 1000 {
		ch, err := e.direct.Read(ctx, name, ReadOptions{Offset: off})
		if err != nil {
			return nil, err
		}
		if len(ch.Data) > 0 {
			var batch []json.RawMessage
			if err := json.Unmarshal(ch.Data, &batch); err != nil {
				return nil, err
			}
			out = append(out, batch...)
		}
		if ch.UpToDate || ch.NextOffset == off {
			return out, nil
		}
		off = ch.NextOffset
	}
	return nil, errors.New("stream never reached up-to-date")
}

// directAppend appends straight to the server as an idempotent producer,
// retrying until ctx ends, so that it rides out a server restart.
func (e *relEnv) directAppend(ctx context.Context, name string, seq int64, data []byte) (AppendResult, error) {
	return relUntil(ctx, func() (AppendResult, error) {
		return e.direct.Append(ctx, name, data, AppendOptions{ContentType: "application/json", Producer: &Producer{ID: "direct", Seq: seq}})
	})
}

// directClose closes a stream straight on the server, retrying until ctx
// ends.
func (e *relEnv) directClose(ctx context.Context, name string) (AppendResult, error) {
	return relUntil(ctx, func() (AppendResult, error) { return e.direct.CloseStream(ctx, name, nil, AppendOptions{}) })
}

// relUntil calls f until it succeeds, fails permanently, or ctx ends.
func relUntil[R any](ctx context.Context, f func() (R, error)) (R, error) {
	for {
		r, err := f()
		if err == nil || !IsRetryable(err) || ctx.Err() != nil {
			return r, err
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return r, err
		case <-t.C:
		}
	}
}

// closedPortURL returns the base URL of a loopback port nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr + testserver.DefaultPrefix
}

// errTexts renders err every way a program might print or log it.
func errTexts(err error) []string {
	if err == nil {
		return nil
	}
	out := []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%q", err)}
	var e *Error
	if errors.As(err, &e) {
		out = append(out, fmt.Sprintf("%+v", *e), fmt.Sprintf("%#v", *e), e.URL, e.Message)
		for u := e.Err; u != nil; u = errors.Unwrap(u) {
			out = append(out, u.Error(), fmt.Sprintf("%+v", u), fmt.Sprintf("%#v", u))
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Error("op failed", "err", err)
	out = append(out, buf.String())
	return out
}

// secretsIn returns every relSecrets value found in texts, with where.
var secretsIn = secrettest.Find
