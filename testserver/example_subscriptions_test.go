package testserver_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/durablego/durable/testserver"
)

// A pull-wake subscription over orders/*: new data writes a wake event to
// the wake stream, one worker claims the lease, acks what it processed
// with done, and the subscription is idle again.
func ExampleWithSubscriptions() {
	srv := testserver.New(testserver.WithSubscriptions(true))
	defer srv.Close()

	do := func(method, path, token, body string, out any) int {
		req, _ := http.NewRequest(method, srv.StreamURL(path), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if out != nil {
			_ = json.Unmarshal(b, out)
		}
		return res.StatusCode
	}
	do("PUT", "wake/pool", "", "", nil) // the application creates the wake stream
	fmt.Println("create:", do("PUT", "__ds/subscriptions/billing", "",
		`{"type":"pull-wake","pattern":"orders/*","wake_stream":"wake/pool","lease_ttl_ms":30000}`, nil))
	do("PUT", "orders/42", "", `{"item":"book"}`, nil)

	var wakes []struct {
		Stream     string `json:"stream"`
		Generation int    `json:"generation"`
	}
	do("GET", "wake/pool?offset=-1", "", "", &wakes)
	fmt.Printf("wake: %s generation %d\n", wakes[0].Stream, wakes[0].Generation)

	var claim struct {
		WakeID     string `json:"wake_id"`
		Generation int    `json:"generation"`
		Token      string `json:"token"`
		Streams    []struct {
			Path string `json:"path"`
			Tail string `json:"tail_offset"`
		} `json:"streams"`
	}
	fmt.Println("claim:", do("POST", "__ds/subscriptions/billing/claim", "", `{"worker":"w1"}`, &claim))
	ack := fmt.Sprintf(`{"wake_id":%q,"generation":%d,"acks":[{"stream":%q,"offset":%q}],"done":true}`,
		claim.WakeID, claim.Generation, claim.Streams[0].Path, claim.Streams[0].Tail)
	var res map[string]bool
	fmt.Println("ack:", do("POST", "__ds/subscriptions/billing/ack", claim.Token, ack, &res), res)
	fmt.Println("stale ack:", do("POST", "__ds/subscriptions/billing/ack", claim.Token, ack, nil))
	// Output:
	// create: 201
	// wake: orders/42 generation 1
	// claim: 200
	// ack: 200 map[next_wake:false ok:true]
	// stale ack: 409
}
