package testserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"time"
)

// WithTLS serves HTTPS with cfg (cloned). When cfg has no certificate, a
// self-signed certificate for 127.0.0.1, ::1 and localhost is generated;
// Certificate and Client then give what a client needs to trust it. Set
// cfg.ClientAuth and cfg.ClientCAs to require client certificates. Unless
// cfg.NextProtos says otherwise, the server offers HTTP/2 and HTTP/1.1 by
// ALPN (NextProtos {"http/1.1"} keeps it to HTTP/1.1).
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) {
		if cfg == nil {
			cfg = &tls.Config{}
		}
		c.tls = cfg.Clone()
	}
}

// setupTLS completes the TLS configuration before listening.
func (s *Server) setupTLS() error {
	cfg := s.cfg.tls
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil {
		cert, err := selfSignedCert()
		if err != nil {
			return err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if len(cfg.Certificates) > 0 {
		leaf := cfg.Certificates[0].Leaf
		if leaf == nil && len(cfg.Certificates[0].Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
		}
		s.cert = leaf
	}
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	return nil
}

// selfSignedCert makes a short-lived ECDSA certificate for loopback.
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"durable testserver"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Certificate returns the server's TLS leaf certificate, or nil when the
// server speaks plain HTTP.
func (s *Server) Certificate() *x509.Certificate { return s.cert }

// Client returns an HTTP client for this server: for TLS it trusts the
// server's certificate (and negotiates HTTP/2 by ALPN, as net/http's default
// transport does); with WithUnencryptedHTTP2 it speaks HTTP/2 without TLS.
// The caller owns it (CloseIdleConnections when done).
func (s *Server) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.cert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(s.cert)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	} else if s.cfg.h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return &http.Client{Transport: tr}
}
