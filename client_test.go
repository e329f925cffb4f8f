package durable

import (
	"net/http"
	"testing"

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
