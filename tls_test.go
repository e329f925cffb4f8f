package durable

// TLS: the Client works against a testserver over HTTPS with a custom
// certificate authority (trusted through WithHTTPClient) and with client
// certificates required; a client without the certificate, or one that
// does not trust the authority, fails with a clear, typed error.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// tlsHTTPClient returns an HTTP client trusting pool and presenting certs.
func tlsHTTPClient(t *testing.T, pool *x509.CertPool, certs ...tls.Certificate) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS12}
	tr.ForceAttemptHTTP2 = true // a custom TLSClientConfig would otherwise turn HTTP/2 off
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// exerciseClient runs every kind of call against srv over c.
func exerciseClient(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
	defer cancel()
	_, err := c.Create(ctx, "tls", CreateOptions{ContentType: "text/plain", Data: []byte("hello ")})
	require.NoError(t, err)
	ar, err := c.Append(ctx, "tls", []byte("tls"), AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}})
	require.NoError(t, err)
	info, err := c.Head(ctx, "tls")
	require.NoError(t, err)
	require.Equal(t, ar.NextOffset, info.NextOffset)
	ch, err := c.Read(ctx, "tls", ReadOptions{Offset: OffsetStart})
	require.NoError(t, err)
	require.Equal(t, "hello tls", string(ch.Data))

	// Live reads: a long-poll woken by an append, and an SSE read.
	done := make(chan error, 1)
	go func() {
		lp, err := c.Read(ctx, "tls", ReadOptions{Offset: ar.NextOffset, Live: LiveLongPoll})
		if err == nil && string(lp.Data) != "!" {
			err = errors.New("long-poll got " + string(lp.Data))
		}
		done <- err
	}()
	// Whether the long-poll is already waiting or not, it must return "!".
	_, err = c.Append(ctx, "tls", []byte("!"), AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p", Seq: 1}})
	require.NoError(t, err)
	require.NoError(t, <-done)
	sse, err := c.Read(ctx, "tls", ReadOptions{Offset: OffsetStart, Live: LiveSSE})
	require.NoError(t, err)
	require.Equal(t, "hello tls!", string(sse.Data))

	_, err = c.CloseStream(ctx, "tls", CloseOptions{})
	require.NoError(t, err)
	require.NoError(t, c.Delete(ctx, "tls"))
}

func TestTLSCustomCA(t *testing.T) {
	t.Parallel()
	srv := testserver.NewTLS(testserver.WithLongPollTimeout(5 * time.Second))
	t.Cleanup(srv.Close)
	require.True(t, strings.HasPrefix(srv.URL(), "https://"))

	c, err := NewClient(srv.StreamURL(""), WithHTTPClient(tlsHTTPClient(t, srv.CertPool())), WithRetry(fastRetry()))
	require.NoError(t, err)
	exerciseClient(t, c)

	// The default HTTP client does not trust the test CA: a typed error
	// naming the certificate problem, not retried into a hang.
	plain, err := NewClient(srv.StreamURL(""), WithRetry(fastRetry()))
	require.NoError(t, err)
	t.Cleanup(plain.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
	defer cancel()
	_, err = plain.Head(ctx, "tls")
	require.NoError(t, ctx.Err())
	var de *Error
	require.ErrorAs(t, err, &de)
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown, "got %v", err)
	require.Contains(t, err.Error(), "certificate")
	t.Logf("untrusted CA: %v (IsRetryable=%v)", err, IsRetryable(err))
}

func TestTLSClientCertificate(t *testing.T) {
	t.Parallel()
	srv, err := testserver.StartTLS("127.0.0.1:0", &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert})
	require.NoError(t, err)
	t.Cleanup(srv.Close)

	cert, err := srv.ClientCertificate("worker-1")
	require.NoError(t, err)
	c, err := NewClient(srv.StreamURL(""), WithHTTPClient(tlsHTTPClient(t, srv.CertPool(), cert)), WithRetry(fastRetry()))
	require.NoError(t, err)
	exerciseClient(t, c)

	// The server's own Client helper carries a certificate too.
	hc := srv.Client()
	t.Cleanup(hc.CloseIdleConnections)
	c2, err := NewClient(srv.StreamURL(""), WithHTTPClient(hc))
	require.NoError(t, err)
	_, err = c2.Create(context.Background(), "other", CreateOptions{})
	require.NoError(t, err)

	noCert := map[string]func(context.Context, *Client) error{
		"create": func(ctx context.Context, c *Client) error { _, err := c.Create(ctx, "x", CreateOptions{}); return err },
		"head":   func(ctx context.Context, c *Client) error { _, err := c.Head(ctx, "other"); return err },
		"read":   func(ctx context.Context, c *Client) error { _, err := c.Read(ctx, "other", ReadOptions{}); return err },
		"sse": func(ctx context.Context, c *Client) error {
			_, err := c.Read(ctx, "other", ReadOptions{Live: LiveSSE})
			return err
		},
		"append": func(ctx context.Context, c *Client) error {
			_, err := c.Append(ctx, "other", []byte("x"), AppendOptions{ContentType: "application/octet-stream"})
			return err
		},
	}
	for name, run := range noCert {
		for _, h2 := range []bool{false, true} {
			proto := map[bool]string{false: "http1", true: "h2"}[h2]
			t.Run("without-cert/"+name+"/"+proto, func(t *testing.T) {
				t.Parallel()
				hc := tlsHTTPClient(t, srv.CertPool())
				hc.Transport.(*http.Transport).ForceAttemptHTTP2 = h2
				c, err := NewClient(srv.StreamURL(""), WithHTTPClient(hc), WithRetry(fastRetry()))
				require.NoError(t, err)
				ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
				defer cancel()
				err = run(ctx, c)
				require.NoError(t, ctx.Err(), "did not return in time")
				var de *Error
				require.ErrorAs(t, err, &de)
				require.Zero(t, de.Status)
				if h2 {
					// net/http's HTTP/2 client may hide the alert behind
					// "http2: client conn could not be established".
					t.Logf("h2 without a client certificate: %v", err)
					return
				}
				// TLS 1.3: the server's "certificate required" alert.
				require.Contains(t, err.Error(), "certificate required", "got %v", err)
				require.False(t, errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "certificate"), "an unclear EOF: %v", err)
			})
		}
	}
	t.Run("nothing-applied-without-cert", func(t *testing.T) {
		t.Parallel()
		// A plain append without a certificate never reached the handler.
		_, err := c2.Head(context.Background(), "x")
		require.ErrorIs(t, err, ErrNotFound)
	})
}

// TestTLSVerificationNotRetried: a certificate the client cannot verify,
// or a certificate the server requires and did not get, will not fix
// itself; such failures should be permanent (IsRetryable false, no retry).
func TestTLSVerificationNotRetried(t *testing.T) {
	t.Parallel()
	knownBug(t, "IsRetryable reports TLS verification failures (x509 unknown authority, \"certificate required\" alert) as retryable, because *url.Error satisfies net.Error; unary calls retry them and a Reader retrying forever would never surface a misconfigured CA")
	srv, err := testserver.StartTLS("127.0.0.1:0", &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	for name, hc := range map[string]*http.Client{
		"unknown-authority": tlsHTTPClient(t, x509.NewCertPool()),
		"no-client-cert":    tlsHTTPClient(t, srv.CertPool()),
	} {
		log := &relLog{}
		c, err := NewClient(srv.StreamURL(""), WithHTTPClient(hc), WithRetry(fastRetry()), WithLogger(log.logger()))
		require.NoError(t, err)
		_, err = c.Head(context.Background(), "s")
		require.Error(t, err)
		require.False(t, IsRetryable(err), "%s: %v", name, err)
		require.NotContains(t, log.String(), "retrying", name)
	}
}
