package testserver

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
)

func TestTLS(t *testing.T) {
	t.Parallel()
	t.Run("self-signed", func(t *testing.T) {
		srv := newTestServer(t, WithTLS(nil))
		if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") || srv.Certificate() == nil {
			t.Fatalf("url %q cert %v", srv.URL(), srv.Certificate())
		}
		c := srv.Client()
		defer c.CloseIdleConnections()
		req, _ := http.NewRequest("PUT", srv.StreamURL("tls"), strings.NewReader("x"))
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 201 || !strings.HasPrefix(res.Header.Get("Location"), "https://") {
			t.Fatalf("status %d location %q", res.StatusCode, res.Header.Get("Location"))
		}
		// An untrusting client fails.
		plain := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		defer plain.CloseIdleConnections()
		if _, err := plain.Get(srv.StreamURL("tls")); err == nil {
			t.Fatal("untrusted certificate accepted")
		}
	})
	t.Run("client certificates required", func(t *testing.T) {
		clientCert, err := selfSignedCert()
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(clientCert.Leaf)
		srv := newTestServer(t, WithTLS(&tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}))
		c := srv.Client()
		defer c.CloseIdleConnections()
		if res, err := c.Get(srv.StreamURL("x")); err == nil {
			res.Body.Close()
			t.Fatal("request without client certificate succeeded")
		}
		tr := c.Transport.(*http.Transport)
		tr.TLSClientConfig.Certificates = []tls.Certificate{clientCert}
		tr.CloseIdleConnections()
		res, err := c.Get(srv.StreamURL("x"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
}
