package testserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"time"
)

// tlsState is the certificate authority of a TLS server: it signed the
// server's certificate and signs client certificates on request.
type tlsState struct {
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

// NewTLS starts a server like New, serving HTTPS on 127.0.0.1 with a free
// port, in the shape of httptest.NewTLSServer. Its certificate (for
// 127.0.0.1, ::1 and localhost) is signed by a fresh in-memory certificate
// authority: trust it with Certificate or CertPool, or use Client. Client
// certificates are not requested; see StartTLS. It panics if it cannot
// listen.
func NewTLS(opts ...Option) *Server {
	s, err := StartTLS("127.0.0.1:0", nil, opts...)
	if err != nil {
		panic("testserver: " + err.Error())
	}
	return s
}

// StartTLS starts an HTTPS server listening on addr. cfg (may be nil) is
// cloned and completed: without Certificates or GetCertificate the server
// presents a certificate signed by its own certificate authority; when cfg
// asks to verify client certificates (ClientAuth VerifyClientCertIfGiven
// or RequireAndVerifyClientCert) without ClientCAs, certificates signed by
// that authority (ClientCertificate) are the ones accepted. HTTP/2 is
// offered. TLS handshake failures are not logged.
func StartTLS(addr string, cfg *tls.Config, opts ...Option) (*Server, error) {
	st, err := newTLSState()
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{}
	if cfg != nil {
		tc = cfg.Clone()
	}
	if len(tc.Certificates) == 0 && tc.GetCertificate == nil {
		leaf, err := st.issue("durable testserver", true)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{leaf}
	}
	if tc.ClientAuth >= tls.VerifyClientCertIfGiven && tc.ClientCAs == nil {
		tc.ClientCAs = st.pool
	}
	s, err := newServer(opts...)
	if err != nil {
		return nil, err
	}
	s.tls = st
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.cancel()
		s.closeDisk()
		return nil, err
	}
	s.ln = ln
	s.url = "https://" + ln.Addr().String()
	s.httpSrv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		TLSConfig:         tc,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.httpSrv.ServeTLS(ln, "", "")
	}()
	return s, nil
}

// Certificate returns the certificate authority that signed the server's
// certificate (and ClientCertificate's), or nil for a plain HTTP server.
func (s *Server) Certificate() *x509.Certificate {
	if s.tls == nil {
		return nil
	}
	return s.tls.ca
}

// CertPool returns a pool holding Certificate, for tls.Config.RootCAs, or
// nil for a plain HTTP server.
func (s *Server) CertPool() *x509.CertPool {
	if s.tls == nil {
		return nil
	}
	return s.tls.pool.Clone()
}

// ClientCertificate issues a client certificate with the given common
// name, signed by the server's certificate authority, so that a server
// started with ClientAuth RequireAndVerifyClientCert accepts it. It fails
// on a plain HTTP server.
func (s *Server) ClientCertificate(commonName string) (tls.Certificate, error) {
	if s.tls == nil {
		return tls.Certificate{}, errors.New("testserver: not a TLS server")
	}
	return s.tls.issue(commonName, false)
}

// Client returns a new HTTP client for the server: for a TLS server it
// trusts the server's certificate authority and presents a client
// certificate it signed (so it works whatever ClientAuth is); for a plain
// server it is an ordinary client. Each call makes a new transport: close
// its idle connections when done.
func (s *Server) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.tls != nil {
		tc := &tls.Config{RootCAs: s.tls.pool.Clone()}
		if cert, err := s.tls.issue("durable testserver client", false); err == nil {
			tc.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr}
}

func newTLSState() (*tlsState, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"durable testserver"}, CommonName: "durable testserver CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("testserver: create CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tlsState{ca: ca, key: key, pool: pool}, nil
}

// issue signs a server certificate (for the loopback names) or a client
// certificate.
func (st *tlsState) issue(commonName string, server bool) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"durable testserver"}, CommonName: commonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, st.ca, &key.PublicKey, st.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testserver: issue certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, st.ca.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
