package durable

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// TestHTTP2ReaderWriter: a Writer, and a Reader in long-poll and in SSE
// mode following it live, over HTTP/2 with TLS (the default transport,
// negotiating by ALPN) and without (WithUnencryptedHTTP2). The server
// counts the protocol of every request it received.
func TestHTTP2ReaderWriter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		server []testserver.Option
		client func(*testing.T, *testserver.Server) *Client
	}{
		{"tls", []testserver.Option{testserver.WithTLS(nil)}, func(t *testing.T, srv *testserver.Server) *Client {
			c, err := NewClient(srv.StreamURL(""))
			require.NoError(t, err)
			// The default transport as NewClient made it, told only to
			// trust the server's self-signed certificate.
			pool := x509.NewCertPool()
			pool.AddCert(srv.Certificate())
			c.hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool}
			return c
		}},
		{"h2c", []testserver.Option{testserver.WithUnencryptedHTTP2(true)}, func(t *testing.T, srv *testserver.Server) *Client {
			c, err := NewClient(srv.StreamURL(""), WithUnencryptedHTTP2())
			require.NoError(t, err)
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testserver.New(append(tc.server, testserver.WithLongPollTimeout(5*time.Second))...)
			defer srv.Close()
			c := tc.client(t, srv)
			defer c.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for i, live := range []LiveMode{LiveLongPoll, LiveSSE} {
				stream := "h2-" + string(live)
				_, err := c.Create(ctx, stream, CreateOptions{ContentType: "application/json"})
				require.NoError(t, err)
				w, err := NewWriter(c, stream, JSONCodec[rwMsg]{})
				require.NoError(t, err)
				r, err := NewReader(c, stream, JSONCodec[rwMsg]{}, WithLive(live))
				require.NoError(t, err)
				got := make(chan Message[rwMsg], 1)
				errc := make(chan error, 1)
				go func() {
					m, err := r.Next(ctx)
					errc <- err
					got <- m
				}()
				// Written once the Reader has reached the (empty) tail, so
				// a live request delivers it.
				require.Eventually(t, func() bool { return r.Stats().UpToDate }, 10*time.Second, time.Millisecond)
				_, err = w.WriteSync(ctx, rwMsg{I: i + 1})
				require.NoError(t, err)
				require.NoError(t, <-errc, "live %v", live)
				require.Equal(t, i+1, (<-got).Value.I)
				require.Equal(t, live, r.Stats().Live)
				require.NoError(t, r.Close(context.Background()))
				require.NoError(t, w.Close(ctx))
			}
			protos := srv.ProtocolRequests()
			require.Len(t, protos, 1, "server saw %v", protos)
			require.Positive(t, protos["HTTP/2.0"], "server saw %v", protos)
		})
	}
}

// TestUnencryptedHTTP2Option: the option is refused where it cannot apply,
// and a Client without it keeps to HTTP/1.1 on a server that offers h2c.
func TestUnencryptedHTTP2Option(t *testing.T) {
	t.Parallel()
	_, err := NewClient("https://example.com/v1/stream/", WithUnencryptedHTTP2())
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = NewClient("http://example.com/v1/stream/", WithUnencryptedHTTP2(), WithHTTPClient(&http.Client{}))
	require.ErrorIs(t, err, ErrInvalidArgument)

	srv := testserver.New(testserver.WithUnencryptedHTTP2(true))
	defer srv.Close()
	c, err := NewClient(srv.StreamURL(""))
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	_, err = c.Create(context.Background(), "h1", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"HTTP/1.1": 1}, srv.ProtocolRequests())
}

// TestUnencryptedHTTP2OpensConnectionsWhenFull: with a server that allows
// few streams per connection, a WithUnencryptedHTTP2 Client whose requests
// all wait at once opens as many connections as they need (its bound on
// connections being dialled never caps the total), and none waits for
// another to finish. Connections dialled while the first were being set
// up are closed again by net/http (HTTP/2 shares one per server), so more
// are accepted than stay open.
func TestUnencryptedHTTP2OpensConnectionsWhenFull(t *testing.T) {
	t.Parallel()
	const perConn, requests = 20, 200
	release := make(chan struct{})
	var (
		mu                   sync.Mutex
		active, accept, open int
	)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			active++
			mu.Unlock()
			<-release
			w.WriteHeader(http.StatusNoContent)
		}),
		Protocols: new(http.Protocols),
		HTTP2:     &http.HTTP2Config{MaxConcurrentStreams: perConn},
		ConnState: func(_ net.Conn, st http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			switch st {
			case http.StateNew:
				accept++
				open++
			case http.StateClosed:
				open--
			}
		},
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	defer srv.Close()
	c, err := NewClient("http://"+ln.Addr().String()+"/", WithUnencryptedHTTP2())
	require.NoError(t, err)
	defer c.CloseIdleConnections()

	errs := make(chan error, requests)
	for range requests {
		go func() {
			res, err := c.hc.Get("http://" + ln.Addr().String() + "/x")
			if err == nil {
				res.Body.Close()
				if res.ProtoMajor != 2 {
					err = errors.New("not HTTP/2: " + res.Proto)
				}
			}
			errs <- err
		}()
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return active == requests
	}, 30*time.Second, time.Millisecond, "every request reaches the server at once")
	// Extra connections are closed as soon as their HTTP/2 set-up ends.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return open <= 2*requests/perConn
	}, 10*time.Second, time.Millisecond, "connections open while %d requests wait", requests)
	mu.Lock()
	stillOpen, accepted := open, accept
	mu.Unlock()
	close(release)
	for range requests {
		require.NoError(t, <-errs)
	}
	require.GreaterOrEqual(t, stillOpen, requests/perConn)
	require.Less(t, accepted, requests/2, "connections accepted for %d requests", requests)
}
