package durable

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDefaultTransportKeepsConnections(t *testing.T) {
	c, err := NewClient("http://127.0.0.1:1/")
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("default transport is %T", c.hc.Transport)
	}
	if tr.MaxIdleConnsPerHost != defaultIdleConnsPerHost || tr.MaxIdleConns < defaultIdleConnsPerHost {
		t.Errorf("idle connections per host = %d (total %d), want %d", tr.MaxIdleConnsPerHost, tr.MaxIdleConns, defaultIdleConnsPerHost)
	}
	if tr == http.DefaultTransport {
		t.Error("default transport shared with net/http")
	}
}

// dialCounter is an http.Client whose transport counts the TCP connections
// it opens.
func dialCounter() (*http.Client, *atomic.Int32) {
	var n atomic.Int32
	d := &net.Dialer{}
	tr := &http.Transport{
		MaxIdleConnsPerHost: 8,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			n.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: tr}, &n
}

// TestClientKeepsIdleConnections: closing a Reader, cancelling a request
// and a request that fails never empty the idle pool that every other user
// of the Client (and of a transport given with WithHTTPClient) relies on.
// go-retryablehttp closed the client's idle connections in all three cases.
func TestClientKeepsIdleConnections(t *testing.T) {
	t.Parallel()
	for _, tc := range []string{"reader closed", "request cancelled", "request failed"} {
		t.Run(tc, func(t *testing.T) {
			t.Parallel()
			srv := testserver.New(testserver.WithLongPollTimeout(5 * time.Second))
			defer srv.Close()
			hc, dials := dialCounter()
			defer hc.CloseIdleConnections()
			c, err := NewClient(srv.StreamURL(""), WithHTTPClient(hc), WithRetry(fastRetry()))
			require.NoError(t, err)
			ctx := context.Background()
			cr, err := c.Create(ctx, "s", CreateOptions{ContentType: "application/json"})
			require.NoError(t, err)
			require.EqualValues(t, 1, dials.Load())
			inFlight := func(method string, n int) {
				require.Eventually(t, func() bool { return srv.Requests("s", method) >= n }, 5*time.Second, time.Millisecond)
			}
			// While one request holds a connection, a Head makes sure
			// another one sits in the idle pool.
			var pooled int32
			idle := func() {
				_, err := c.Head(ctx, "s")
				require.NoError(t, err)
				pooled = dials.Load()
			}
			done := make(chan error, 1)
			switch tc {
			case "reader closed":
				r, err := NewReader[event](c, "s", WithStart(cr.NextOffset))
				require.NoError(t, err)
				go func() { _, err := r.Next(ctx); done <- err }()
				inFlight(http.MethodGet, 2) // a catch-up read, then the long-poll
				idle()
				require.NoError(t, r.Close(ctx))
			case "request cancelled":
				lpCtx, cancel := context.WithCancel(ctx)
				defer cancel()
				go func() {
					_, err := c.Read(lpCtx, "s", ReadOptions{Offset: cr.NextOffset, Live: LiveLongPoll})
					done <- err
				}()
				inFlight(http.MethodGet, 1)
				idle()
				cancel()
			case "request failed":
				srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodPost, Delay: 300 * time.Millisecond, Drop: true, Count: 1})
				go func() {
					_, err := c.Append(ctx, "s", []byte(`[1]`), AppendOptions{ContentType: "application/json"})
					done <- err
				}()
				inFlight(http.MethodPost, 1)
				idle()
			}
			require.Error(t, <-done)
			_, err = c.Head(ctx, "s")
			require.NoError(t, err)
			require.Equal(t, pooled, dials.Load(), "the idle connection was closed: Head had to dial again")
		})
	}
}
