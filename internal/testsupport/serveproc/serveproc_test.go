package serveproc

import (
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStart: the server runs in a process of its own, answers on its URL,
// takes the flags given, and is gone after the test's cleanup.
func TestStart(t *testing.T) {
	var url string
	t.Run("serve", func(t *testing.T) {
		s := Start(t, "--h2c")
		url = s.StreamURL("x")
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		hc := &http.Client{Transport: &http.Transport{Protocols: &p}}
		defer hc.CloseIdleConnections()
		req, _ := http.NewRequest("PUT", url, strings.NewReader("hi"))
		req.Header.Set("Content-Type", "text/plain")
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusCreated || res.ProtoMajor != 2 {
			t.Fatalf("PUT: %d over %s", res.StatusCode, res.Proto)
		}
	})
	res, err := http.Get(url)
	if err == nil {
		res.Body.Close()
		t.Fatalf("server still answers after cleanup: %d", res.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
}
