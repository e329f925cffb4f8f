package subtest

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestAckBody(t *testing.T) {
	got := AckBody("w_1", 7, true, [2]string{"events/a", "0_5"})
	want := `{"wake_id":"w_1","generation":7,"acks":[{"stream":"events/a","offset":"0_5"}],"done":true}`
	if got != want {
		t.Fatalf("AckBody = %s, want %s", got, want)
	}
	if got := AckBody("w_1", 7, false); got != `{"wake_id":"w_1","generation":7}` {
		t.Fatalf("AckBody without acks = %s", got)
	}
}

// TestReceiver: deliveries are recorded in order with their raw body and
// signature, replies follow the script (the last repeats), Wait times out.
func TestReceiver(t *testing.T) {
	rc := NewReceiver(Reply{Status: 500}, Reply{Status: 200, Body: `{"done":true}`})
	defer rc.Close()
	post := func(body string) (int, string) {
		req, _ := http.NewRequest("POST", rc.URL(), strings.NewReader(body))
		req.Header.Set("Webhook-Signature", "t=1,kid=k,ed25519=s")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return res.StatusCode, b.String()
	}
	for i, want := range []int{500, 200, 200} {
		if got, _ := post(`{"wake_id":"w","generation":` + string(rune('1'+i)) + `,"streams":[{"path":"p","tail_offset":"9"}]}`); got != want {
			t.Fatalf("reply %d = %d, want %d", i, got, want)
		}
	}
	d, ok := rc.Wait(1, time.Second)
	if !ok || d.Body.Generation != 2 || d.Body.Tail("p") != "9" || d.Signature != "t=1,kid=k,ed25519=s" || !bytes.Contains(d.Raw, []byte(`"generation":2`)) {
		t.Fatalf("delivery 1 = %+v, %v", d, ok)
	}
	if rc.Count() != 3 {
		t.Fatalf("Count = %d", rc.Count())
	}
	if _, ok := rc.Wait(3, 20*time.Millisecond); ok {
		t.Fatal("Wait returned a delivery that never came")
	}
	rc.SetReplies(Reply{Status: 204})
	if got, _ := post(`{}`); got != 204 {
		t.Fatalf("after SetReplies: %d", got)
	}
	http.DefaultClient.CloseIdleConnections()
}
