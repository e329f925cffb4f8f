package testserver

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzSubscriptionBody: any PUT body either fails validation or yields a
// normalized configuration that is a fixed point: feeding it back gives
// the same configuration and hash, so a client that re-sends what it got
// re-confirms (200) rather than conflicts (409).
func FuzzSubscriptionBody(f *testing.F) {
	for _, s := range []string{
		`{"type":"pull-wake","pattern":"events/*","streams":["b","a","a"],"wake_stream":"/w/","lease_ttl_ms":1000}`,
		`{"type":"webhook","pattern":"/x/**/**/y/","webhook":{"url":"https://h.example.com/"},"description":""}`,
		`{"type":"webhook","streams":["a//b"],"webhook":{"url":"http://127.0.0.1/"}}`,
		`{"type":"pull-wake","streams":[],"wake_stream":"w","lease_ttl_ms":600001}`,
		`{"type":"pull-wake","pattern":"__ds/*","wake_stream":"w"}`,
		`[]`, `null`, `{"lease_ttl_ms":1e3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b createBody
		if json.Unmarshal(data, &b) != nil {
			return
		}
		c, e := b.config()
		if e != nil {
			if e.status != 400 || e.code != "INVALID_REQUEST" {
				t.Fatalf("config error %+v", e)
			}
			return
		}
		again := createBody{Type: c.Type, Streams: c.Streams, LeaseTTLms: &c.LeaseTTLms, Description: c.Description}
		if c.Pattern != "" {
			again.Pattern = &c.Pattern
		}
		if c.WakeStream != "" {
			again.WakeStream = &c.WakeStream
		}
		if c.WebhookURL != "" {
			again.Webhook = &struct {
				URL string `json:"url"`
			}{c.WebhookURL}
		}
		c2, e2 := again.config()
		if e2 != nil || c2.hash() != c.hash() {
			t.Fatalf("normalized config %+v is not a fixed point: %+v, %v", c, c2, e2)
		}
		for i := 1; i < len(c.Streams); i++ {
			if c.Streams[i-1] >= c.Streams[i] {
				t.Fatalf("streams not sorted and unique: %q", c.Streams)
			}
		}
		if c.Pattern != "" {
			segs := strings.Split(c.Pattern, "/")
			for i, seg := range segs {
				switch seg {
				case "**":
					segs[i] = "x/y"
				case "*":
					segs[i] = "z"
				}
			}
			if p := strings.Join(segs, "/"); !globMatch(c.Pattern, p) {
				t.Fatalf("pattern %q does not match %q", c.Pattern, p)
			}
		}
	})
}

// FuzzAckBody: an ack body is rejected as malformed or has only
// normalized, valid stream paths with offsets.
func FuzzAckBody(f *testing.F) {
	for _, s := range []string{
		`{"wake_id":"w_1","generation":3,"acks":[{"stream":"/a/b/","offset":"0000000000000000_0000000000000004"}],"done":true}`,
		`{"acks":[{"stream":"a/../b","offset":"x"}]}`,
		`{"acks":[{"offset":"x"}]}`, `{"generation":1.5}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var q ackReq
		if json.Unmarshal(data, &q) != nil || q.validate() != nil {
			return
		}
		for _, a := range q.Acks {
			if a.Offset == "" {
				t.Fatal("empty offset passed")
			}
			if _, status, _ := validateStreamPath(a.Stream); status != 0 {
				t.Fatalf("invalid stream %q passed", a.Stream)
			}
		}
	})
}

// globRef is the plain recursive reading of §6.2's glob rules, to check
// the table-driven matcher against.
func globRef(pat, segs []string) bool {
	if len(pat) == 0 {
		return len(segs) == 0
	}
	switch pat[0] {
	case "**":
		for i := 0; i <= len(segs); i++ {
			if globRef(pat[1:], segs[i:]) {
				return true
			}
		}
		return false
	case "*":
		return len(segs) > 0 && globRef(pat[1:], segs[1:])
	default:
		return len(segs) > 0 && segs[0] == pat[0] && globRef(pat[1:], segs[1:])
	}
}

// FuzzGlobMatch: globMatch agrees with globRef.
func FuzzGlobMatch(f *testing.F) {
	f.Add("events/*", "events/a")
	f.Add("**/x/**", "a/x/b/x")
	f.Add("a/**/b/*", "a/b/c")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		pat, segs := strings.Split(pattern, "/"), strings.Split(path, "/")
		if len(pat) > 12 || len(segs) > 24 {
			return // the reference is exponential
		}
		if got, want := globMatch(pattern, path), globRef(pat, segs); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, reference %v", pattern, path, got, want)
		}
	})
}
