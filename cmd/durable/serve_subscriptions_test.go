package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/durablego/durable/internal/testsupport/subtest"
)

// subClient talks JSON to a `durable serve --subscriptions` child.
type subClient struct {
	t    *testing.T
	base string // server base URL
	hc   *http.Client
}

// do sends a request under /v1/stream/ and decodes a JSON answer into out
// (if not nil). It returns the status, or 0 on a transport error.
func (c *subClient) do(method, rel, token, body string, out any) int {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+"/v1/stream/"+rel, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %d %q: %v", method, rel, res.StatusCode, b, err)
		}
	}
	return res.StatusCode
}

func (c *subClient) want(status int, method, rel, token, body string, out any) {
	c.t.Helper()
	if got := c.do(method, rel, token, body, out); got != status {
		c.t.Fatalf("%s %s = %d, want %d", method, rel, got, status)
	}
}

type claimAnswer struct {
	WakeID     string `json:"wake_id"`
	Generation int64  `json:"generation"`
	Token      string `json:"token"`
	Streams    []struct {
		Path string `json:"path"`
		Tail string `json:"tail_offset"`
	} `json:"streams"`
}

type subAnswer struct {
	Generation int64 `json:"generation"`
	Streams    []struct {
		Path  string `json:"path"`
		Acked string `json:"acked_offset"`
	} `json:"streams"`
	Webhook *struct {
		Signing struct {
			KID string `json:"kid"`
		} `json:"signing"`
	} `json:"webhook"`
}

func ackJSON(c claimAnswer, offset string) string {
	return subtest.AckBody(c.WakeID, c.Generation, false, [2]string{"events/a", offset})
}

// TestServeSubscriptionsSurviveKill: with --data-dir, subscriptions, every
// acknowledged ack, the lease and the signing keys survive a SIGKILL of
// `durable serve --subscriptions` taken while acks are being sent.
func TestServeSubscriptionsSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	args := "serve --addr 127.0.0.1:0 --subscriptions --allow-loopback-webhooks --data-dir " + dir
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	cmd, base := startChild(t, args)
	c := &subClient{t: t, base: base, hc: hc}
	const pull = `{"type":"pull-wake","pattern":"events/*","wake_stream":"wake","lease_ttl_ms":600000}`
	const hook = `{"type":"webhook","streams":["quiet"],"webhook":{"url":"http://127.0.0.1:9/h"}}`
	c.want(201, "PUT", "wake", "", "", nil)
	c.want(201, "PUT", "__ds/subscriptions/s", "", pull, nil)
	var h subAnswer
	c.want(201, "PUT", "__ds/subscriptions/h", "", hook, &h)
	c.want(201, "PUT", "events/a", "", `{"n":0}`, nil)
	var claim claimAnswer
	c.want(200, "POST", "__ds/subscriptions/s/claim", "", `{"worker":"w1"}`, &claim)

	// Append and ack each tail from a goroutine while the server is killed.
	acked := make(chan string, 10000)
	go func() {
		defer close(acked)
		for i := 1; ; i++ {
			req, _ := http.NewRequest("POST", base+"/v1/stream/events/a", strings.NewReader(`{"n":1}`))
			req.Header.Set("Content-Type", "application/json")
			res, err := hc.Do(req)
			if err != nil {
				return
			}
			res.Body.Close()
			tail := res.Header.Get("Stream-Next-Offset")
			if c.do("POST", "__ds/subscriptions/s/ack", claim.Token, ackJSON(claim, tail), nil) != 200 {
				return
			}
			acked <- tail
		}
	}()
	var last string
	n := 0
	for tail := range acked {
		last = tail
		if n++; n == 100 {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	_ = cmd.Wait()
	hc.CloseIdleConnections()

	cmd2, base2 := startChild(t, args)
	defer func() {
		_ = cmd2.Process.Signal(syscall.SIGTERM)
		_ = cmd2.Wait()
	}()
	c.base = base2
	var s subAnswer
	c.want(200, "GET", "__ds/subscriptions/s", "", "", &s)
	if len(s.Streams) != 1 || s.Streams[0].Acked < last || s.Generation != claim.Generation {
		t.Fatalf("after restart: %+v; last acknowledged ack %s at generation %d", s, last, claim.Generation)
	}
	// The lease survived: the holder goes on, another worker is refused.
	c.want(409, "POST", "__ds/subscriptions/s/claim", "", `{"worker":"w2"}`, nil)
	c.want(200, "POST", "__ds/subscriptions/s/ack", claim.Token, ackJSON(claim, s.Streams[0].Acked), nil)
	// The webhook subscription and the signing key survived.
	c.want(200, "PUT", "__ds/subscriptions/h", "", hook, nil)
	var h2 subAnswer
	c.want(200, "GET", "__ds/subscriptions/h", "", "", &h2)
	if h.Webhook == nil || h2.Webhook == nil || h2.Webhook.Signing.KID != h.Webhook.Signing.KID {
		t.Fatalf("signing key before %+v, after %+v", h.Webhook, h2.Webhook)
	}
	var jwks struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	c.want(200, "GET", "__ds/jwks.json", "", "", &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].KID != h.Webhook.Signing.KID {
		t.Fatalf("JWKS after restart = %+v", jwks)
	}
}

// TestServeSubscriptionFlags: the subscription flags and their usage rule.
func TestServeSubscriptionFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--allow-loopback-webhooks"}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "needs --subscriptions") {
		t.Fatalf("code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	run(context.Background(), []string{"serve", "-h"}, &out, &errb)
	for _, want := range []string{"-subscriptions", "-allow-loopback-webhooks"} {
		if !strings.Contains(errb.String()+out.String(), want) {
			t.Fatalf("serve -h lacks %s:\n%s", want, errb.String())
		}
	}
}
