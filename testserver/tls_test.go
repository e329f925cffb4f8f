package testserver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// tlsDo sends one request with hc and returns status and body.
func tlsDo(hc *http.Client, method, url, ctype, body string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, "", err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func closeIdle(hc *http.Client) { hc.CloseIdleConnections() }

func TestTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		clientAuth tls.ClientAuthType
	}{
		{"server-cert-only", tls.NoClientCert},
		{"client-cert-required", tls.RequireAndVerifyClientCert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, err := StartTLS("127.0.0.1:0", &tls.Config{ClientAuth: tt.clientAuth})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") {
				t.Fatalf("URL %q", srv.URL())
			}
			if srv.Certificate() == nil || !srv.Certificate().IsCA {
				t.Fatal("Certificate() is not the CA")
			}

			hc := srv.Client()
			defer closeIdle(hc)
			u := srv.StreamURL("tls/s")
			if st, _, err := tlsDo(hc, http.MethodPut, u, "text/plain", "ab"); err != nil || st != http.StatusCreated {
				t.Fatalf("create: %d %v", st, err)
			}
			if st, _, err := tlsDo(hc, http.MethodPost, u, "text/plain", "cd"); err != nil || st != http.StatusNoContent {
				t.Fatalf("append: %d %v", st, err)
			}
			if st, body, err := tlsDo(hc, http.MethodGet, u+"?offset=-1", "", ""); err != nil || st != http.StatusOK || body != "abcd" {
				t.Fatalf("read: %d %q %v", st, body, err)
			}

			// A client that does not trust the CA fails the handshake.
			untrusting := &http.Client{Transport: &http.Transport{}}
			defer closeIdle(untrusting)
			_, _, err = tlsDo(untrusting, http.MethodGet, u+"?offset=-1", "", "")
			var unknown x509.UnknownAuthorityError
			if !errors.As(err, &unknown) {
				t.Fatalf("untrusted CA: got %v", err)
			}

			// A client that trusts the CA but has no certificate.
			noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CertPool()}}}
			defer closeIdle(noCert)
			st, _, err := tlsDo(noCert, http.MethodGet, u+"?offset=-1", "", "")
			if tt.clientAuth == tls.RequireAndVerifyClientCert {
				if err == nil || !strings.Contains(err.Error(), "certificate required") {
					t.Fatalf("no client certificate: got %d %v", st, err)
				}
			} else if err != nil || st != http.StatusOK {
				t.Fatalf("no client certificate needed: got %d %v", st, err)
			}

			// A client certificate from another authority is refused too.
			other := NewTLS()
			defer other.Close()
			foreign, err := other.ClientCertificate("intruder")
			if err != nil {
				t.Fatal(err)
			}
			wrongCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CertPool(), Certificates: []tls.Certificate{foreign}}}}
			defer closeIdle(wrongCert)
			_, _, err = tlsDo(wrongCert, http.MethodGet, u+"?offset=-1", "", "")
			if tt.clientAuth == tls.RequireAndVerifyClientCert && err == nil {
				t.Fatal("a certificate from another CA was accepted")
			}
		})
	}
}

func TestTLSPlainServerHasNoCA(t *testing.T) {
	t.Parallel()
	srv := New()
	defer srv.Close()
	if srv.Certificate() != nil || srv.CertPool() != nil {
		t.Fatal("plain server reports a CA")
	}
	if _, err := srv.ClientCertificate("x"); err == nil {
		t.Fatal("plain server issued a client certificate")
	}
	hc := srv.Client()
	defer closeIdle(hc)
	if st, _, err := tlsDo(hc, http.MethodPut, srv.StreamURL("p"), "text/plain", ""); err != nil || st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, err)
	}
}
