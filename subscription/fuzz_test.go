package subscription

import (
	"encoding/json"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to every decoder of server answers and
// deliveries: a subscription (Info), a webhook body (as the Receiver reads
// it once verified) and wake events. None may panic; what they accept is
// well-formed.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"s","type":"pull-wake","pattern":"a/*","streams":[{"path":"a/b","link_type":"glob","acked_offset":"0_1"}],"wake_stream":"w","lease_ttl_ms":30000,"created_at":"2026-05-09T00:00:00.000Z","status":"active","next_attempt_at":1778324210000}`))
	f.Add([]byte(`{"subscription_id":"s","wake_id":"w_1","generation":7,"streams":[{"path":"a","link_type":"glob","acked_offset":"-1","tail_offset":"1","has_pending":true}],"callback_url":"http://h/cb","callback_token":"t"}`))
	f.Add([]byte(`{"type":"wake","subscription_id":"s","stream":"a","generation":1,"ts":1}` + "\n" + `{"type":"wake","subscription_id":"t"}`))
	f.Add([]byte(`{"webhook":{"url":"https://x","signing":{"alg":"ed25519","kid":"k","jwks_url":"u"}},"next_attempt_at":"x"}`))
	f.Add([]byte(`null`))
	r := &Receiver[item]{}
	f.Fuzz(func(t *testing.T, b []byte) {
		var in Info
		if json.Unmarshal(b, &in) == nil {
			out, err := json.Marshal(in)
			if err != nil {
				t.Fatalf("an Info that decoded does not encode: %v", err)
			}
			var again Info
			if err := json.Unmarshal(out, &again); err != nil || again.ID != in.ID || again.Type != in.Type ||
				again.LeaseTTL != in.LeaseTTL || len(again.Links) != len(in.Links) {
				t.Fatalf("Info does not survive a round trip: %s", out)
			}
		}
		if w, status, _ := r.decode(b); status == 0 {
			if w.ID == "" || w.Token.IsZero() || checkID(w.Subscription) != nil || !w.IsWebhook() {
				t.Fatalf("accepted a webhook body without a wake: %+v", w)
			}
		}
		for _, id := range wakeIDs(b) {
			if id == "" {
				t.Fatal("a wake event without a subscription id")
			}
		}
	})
}
