package testserver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func producerHdrs(seq string) hdrs {
	return hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": seq}
}

// orderServer starts a server with the given producer ordering and
// returns it and the URL of a new text stream "o" on it.
func orderServer(t *testing.T, on bool, grace time.Duration) (*Server, string) {
	t.Helper()
	s := newTestServer(t, WithProducerOrdering(on, grace))
	u := s.StreamURL("o")
	mustStatus(t, call(t, "PUT", u, hdrs{"Content-Type": ctText}, ""), 201)
	return s, u
}

// waitPosts waits until the server has received n POSTs to stream "o".
func waitPosts(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Requests("o", http.MethodPost) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not receive %d POSTs", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readAll returns the stream's whole data.
func readAll(t *testing.T, url string) string {
	t.Helper()
	r := call(t, "GET", url+"?offset=-1", nil, "")
	mustStatus(t, r, 200)
	return r.body
}

// TestProducerOrdering: a producer request that overtook the ones sent
// before it waits for them instead of getting a false sequence gap: for as
// long as an earlier one is being handled (its body still arriving), and
// for the grace when it has not reached the server yet. A real gap is
// still a 409, after the grace; with ordering off it is one at once.
func TestProducerOrdering(t *testing.T) {
	t.Parallel()

	t.Run("seq 1 before seq 0 within the grace", func(t *testing.T) {
		t.Parallel()
		s, u := orderServer(t, true, 2*time.Second)
		var wg sync.WaitGroup
		var r1 resp
		wg.Add(1)
		go func() {
			defer wg.Done()
			r1 = call(t, "POST", u, producerHdrs("1"), "b")
		}()
		waitPosts(t, s, 1)
		time.Sleep(50 * time.Millisecond) // seq 1 is waiting at the server
		r0 := call(t, "POST", u, producerHdrs("0"), "a")
		wg.Wait()
		mustStatus(t, r0, 200)
		mustStatus(t, r1, 200)
		if got := readAll(t, u); got != "ab" {
			t.Fatalf("stream = %q, want \"ab\"", got)
		}
	})

	t.Run("waits for a predecessor being received, beyond the grace", func(t *testing.T) {
		t.Parallel()
		s, u := orderServer(t, true, 10*time.Millisecond)
		// seq 0's body trickles in for 1 s: it is being handled.
		pr, pw := io.Pipe()
		req, err := http.NewRequest("POST", u, pr)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range producerHdrs("0") {
			req.Header.Set(k, v)
		}
		done := make(chan int, 1)
		go func() {
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- -1
				return
			}
			res.Body.Close()
			done <- res.StatusCode
		}()
		go func() {
			_, _ = pw.Write([]byte("a"))
			time.Sleep(time.Second)
			_, _ = pw.Write([]byte("a"))
			pw.Close()
		}()
		waitPosts(t, s, 1)
		time.Sleep(100 * time.Millisecond) // seq 0 has reached its handler
		start := time.Now()
		r1 := call(t, "POST", u, producerHdrs("1"), "b")
		mustStatus(t, r1, 200)
		if st := <-done; st != 200 {
			t.Fatalf("seq 0: status %d", st)
		}
		if el := time.Since(start); el < 100*time.Millisecond {
			t.Fatalf("seq 1 answered after %v: it did not wait for seq 0", el)
		}
		if got := readAll(t, u); got != "aab" {
			t.Fatalf("stream = %q, want \"aab\"", got)
		}
	})

	t.Run("a real gap is a 409 after the grace", func(t *testing.T) {
		t.Parallel()
		const grace = 150 * time.Millisecond
		_, u := orderServer(t, true, grace)
		mustStatus(t, call(t, "POST", u, producerHdrs("0"), "a"), 200)
		start := time.Now()
		r := call(t, "POST", u, producerHdrs("2"), "c")
		el := time.Since(start)
		mustStatus(t, r, 409)
		if r.get("Producer-Expected-Seq") != "1" || r.get("Producer-Received-Seq") != "2" {
			t.Fatalf("expected/received = %s/%s", r.get("Producer-Expected-Seq"), r.get("Producer-Received-Seq"))
		}
		if el < grace || el > grace+2*time.Second {
			t.Fatalf("409 after %v, want about the grace %v", el, grace)
		}
		// Other appends to the stream during the grace do not end it early
		// with a wrong answer: the gap is re-checked after each.
		if got := readAll(t, u); got != "a" {
			t.Fatalf("stream = %q", got)
		}
	})

	t.Run("off: first come, first validated", func(t *testing.T) {
		t.Parallel()
		_, u := orderServer(t, false, time.Hour)
		start := time.Now()
		r := call(t, "POST", u, producerHdrs("1"), "b")
		mustStatus(t, r, 409)
		if el := time.Since(start); el > time.Second {
			t.Fatalf("409 after %v: ordering off must not wait", el)
		}
	})

	t.Run("a client that leaves while waiting", func(t *testing.T) {
		t.Parallel()
		s, u := orderServer(t, true, time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "POST", u, strings.NewReader("b"))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range producerHdrs("1") {
			req.Header.Set(k, v)
		}
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			t.Fatalf("status %d, want the client's timeout", res.StatusCode)
		}
		// The server stops waiting once the client is gone (the request
		// leaves the tracker); nothing was applied, so the producer starts
		// at 0 as usual.
		deadline := time.Now().Add(10 * time.Second)
		for s.seqs.inProgress(seqKey{path: "o", id: "p", epoch: 0, seq: 1}) != nil {
			if time.Now().After(deadline) {
				t.Fatal("the abandoned request is still waiting")
			}
			time.Sleep(5 * time.Millisecond)
		}
		mustStatus(t, call(t, "POST", u, producerHdrs("0"), "a"), 200)
		if got := readAll(t, u); got != "a" {
			t.Fatalf("stream = %q", got)
		}
	})
}
