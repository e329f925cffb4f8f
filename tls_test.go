package durable

// TLS: the Client works against a testserver over HTTPS with a custom
// certificate authority (trusted through WithHTTPClient) and with client
// certificates required; a client without the certificate, or one that
// does not trust the authority, fails with a clear, typed error.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
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
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// testCA is a certificate authority made for one test: it signs the
// server's certificate (custom CA) and client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "durable test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue signs a server certificate for the loopback names, or a client
// certificate.
func (ca *testCA) issue(t *testing.T, name string, server bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}
}

// certPool holds cert.
func certPool(cert *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(cert)
	return p
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

	_, err = c.CloseStream(ctx, "tls", nil, AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, c.Delete(ctx, "tls"))
}

func TestTLSCustomCA(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	srv := testserver.New(testserver.WithTLS(&tls.Config{Certificates: []tls.Certificate{ca.issue(t, "server", true)}}),
		testserver.WithLongPollTimeout(5*time.Second))
	t.Cleanup(srv.Close)
	require.True(t, strings.HasPrefix(srv.URL(), "https://"))

	c, err := NewClient(srv.StreamURL(""), WithHTTPClient(tlsHTTPClient(t, ca.pool)), WithRetry(fastRetry()))
	require.NoError(t, err)
	exerciseClient(t, c)

	// Neither the default HTTP client nor one trusting another authority
	// accepts the server: a typed error naming the certificate problem,
	// returned in time.
	for name, opts := range map[string][]Option{
		"system roots": nil,
		"another CA":   {WithHTTPClient(tlsHTTPClient(t, newTestCA(t).pool))},
		"wrong-leaf":   {WithHTTPClient(tlsHTTPClient(t, certPool(ca.issue(t, "other", true).Leaf)))},
	} {
		other, err := NewClient(srv.StreamURL(""), append([]Option{WithRetry(fastRetry())}, opts...)...)
		require.NoError(t, err)
		t.Cleanup(other.CloseIdleConnections)
		ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
		_, err = other.Head(ctx, "tls")
		require.NoError(t, ctx.Err(), name)
		cancel()
		var de *Error
		require.ErrorAs(t, err, &de, name)
		var verr *tls.CertificateVerificationError
		require.ErrorAs(t, err, &verr, "%s: got %v", name, err)
		require.Contains(t, err.Error(), "certificate", name)
		t.Logf("%s: %v (IsRetryable=%v)", name, err, IsRetryable(err))
	}
}

// TestTLSSelfSigned: the testserver's own self-signed certificate,
// trusted through its Client helper.
func TestTLSSelfSigned(t *testing.T) {
	t.Parallel()
	srv := testserver.New(testserver.WithTLS(nil), testserver.WithLongPollTimeout(5*time.Second))
	t.Cleanup(srv.Close)
	hc := srv.Client()
	t.Cleanup(hc.CloseIdleConnections)
	c, err := NewClient(srv.StreamURL(""), WithHTTPClient(hc), WithRetry(fastRetry()))
	require.NoError(t, err)
	exerciseClient(t, c)
}

// mtlsServer starts a testserver requiring client certificates signed by
// the returned CA. It speaks HTTP/1.1 only: with TLS 1.3 the server's alert
// about a missing or foreign client certificate arrives after the client's
// handshake has finished, and Go's HTTP/2 transport, when that alert lands
// before the first request took a stream, reports only "http2: client conn
// could not be established" and drops the alert that
// TestTLSClientCertificate checks is named in the error.
func mtlsServer(t *testing.T, opts ...testserver.Option) (*testserver.Server, *testCA) {
	t.Helper()
	ca := newTestCA(t)
	srv := testserver.New(append([]testserver.Option{testserver.WithTLS(&tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "server", true)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
		NextProtos:   []string{"http/1.1"},
	})}, opts...)...)
	t.Cleanup(srv.Close)
	return srv, ca
}

func TestTLSClientCertificate(t *testing.T) {
	t.Parallel()
	srv, ca := mtlsServer(t, testserver.WithLongPollTimeout(5*time.Second))
	c, err := NewClient(srv.StreamURL(""), WithHTTPClient(tlsHTTPClient(t, ca.pool, ca.issue(t, "worker-1", false))), WithRetry(fastRetry()))
	require.NoError(t, err)
	exerciseClient(t, c)
	_, err = c.Create(context.Background(), "other", CreateOptions{})
	require.NoError(t, err)

	calls := map[string]func(context.Context, *Client) error{
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
	certs := map[string][]tls.Certificate{
		"no-cert":      nil,
		"foreign-cert": {newTestCA(t).issue(t, "intruder", false)},
	}
	for certName, cs := range certs {
		for name, run := range calls {
			t.Run(certName+"/"+name, func(t *testing.T) {
				t.Parallel()
				c, err := NewClient(srv.StreamURL(""), WithHTTPClient(tlsHTTPClient(t, ca.pool, cs...)), WithRetry(fastRetry()))
				require.NoError(t, err)
				ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
				defer cancel()
				err = run(ctx, c)
				require.NoError(t, ctx.Err(), "did not return in time")
				var de *Error
				require.ErrorAs(t, err, &de)
				require.Zero(t, de.Status)
				// TLS 1.3: the server's alert names the problem.
				want := map[string]string{"no-cert": "certificate required", "foreign-cert": "unknown certificate authority"}[certName]
				require.Contains(t, err.Error(), want, "got %v", err)
			})
		}
	}
	t.Run("nothing-applied", func(t *testing.T) {
		t.Parallel()
		_, err := c.Head(context.Background(), "x")
		require.ErrorIs(t, err, ErrNotFound)
	})
}

// TestTLSVerificationNotRetried: a certificate the client cannot verify,
// or a certificate the server requires and did not get, will not fix
// itself; such failures should be permanent (IsRetryable false, no retry).
func TestTLSVerificationNotRetried(t *testing.T) {
	t.Parallel()
	srv, ca := mtlsServer(t)
	for name, hc := range map[string]*http.Client{
		"unknown-authority": tlsHTTPClient(t, x509.NewCertPool()),
		"no-client-cert":    tlsHTTPClient(t, ca.pool),
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

// TestTLSReaderWriter: a Writer and a Reader over HTTPS with a client
// certificate required.
func TestTLSReaderWriter(t *testing.T) {
	t.Parallel()
	srv, ca := mtlsServer(t, testserver.WithLongPollTimeout(time.Second))
	c, err := NewClient(srv.StreamURL(""), WithHTTPClient(tlsHTTPClient(t, ca.pool, ca.issue(t, "worker", false))))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
	defer cancel()
	_, err = c.Create(ctx, "tls", CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	w, err := NewWriter(c, "tls", JSONCodec[rwMsg]{})
	require.NoError(t, err)
	for i := range 50 {
		require.NoError(t, w.Write(ctx, rwMsg{I: i}))
	}
	require.NoError(t, w.CloseStream(ctx))
	require.NoError(t, w.Close(ctx))
	for _, live := range []LiveMode{LiveLongPoll, LiveSSE} {
		r, err := NewReader(c, "tls", JSONCodec[rwMsg]{}, WithLive(live))
		require.NoError(t, err)
		for i := range 50 {
			msg, err := r.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, i, msg.Value.I)
		}
		_, err = r.Next(ctx)
		require.ErrorIs(t, err, io.EOF)
		require.NoError(t, r.Close(context.Background()))
	}
}
