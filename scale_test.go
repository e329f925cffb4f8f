package durable

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
)

// scaleReaders is how many live Readers TestManyReadersHTTP2 opens. Under
// the race detector, which allows at most 8,128 goroutines alive at once,
// it opens 2,000 (each Reader here costs three: the caller's, HTTP/2's
// per-request one, and the server's handler); .ci/steps/15-scale.sh runs
// the full 10,000 without it.
func scaleReaders() int {
	if raceEnabled {
		return 2_000
	}
	return 10_000
}

// TestManyReadersHTTP2 opens thousands of live long-poll Readers, one per
// stream, over cleartext HTTP/2 on one Client. Once every one of them waits
// at the server, one message is appended to each stream; every Reader must
// get its own stream's message, the server must have accepted only a few
// connections (the requests share them as HTTP/2 streams, up to
// testserver.HTTP2MaxConcurrentStreams each), and after Close nothing may
// be left running (goleak in TestMain).
func TestManyReadersHTTP2(t *testing.T) {
	n := scaleReaders()
	start := time.Now()
	srv := testserver.New(testserver.WithUnencryptedHTTP2(true), testserver.WithLongPollTimeout(time.Minute))
	defer srv.Close()
	c, err := NewClient(srv.StreamURL(""), WithUnencryptedHTTP2())
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := func(i int) string { return "scale/" + strconv.Itoa(i) }

	// parallel runs f(0..n-1) on a few goroutines and returns the first error.
	parallel := func(f func(i int) error) error {
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
		)
		const workers = 16
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					if err := f(i); err != nil {
						mu.Lock()
						first = cmp.Or(first, err)
						mu.Unlock()
						return
					}
				}
			}()
		}
		wg.Wait()
		return first
	}
	if err := parallel(func(i int) error {
		_, err := c.Create(ctx, name(i), CreateOptions{ContentType: "application/json"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	created := time.Now()

	type result struct {
		i   int
		msg Message[rwMsg]
		err error
	}
	results := make(chan result, n)
	readers := make([]*Reader[rwMsg], n)
	for i := range readers {
		r, err := NewReader(c, name(i), JSONCodec[rwMsg]{}, WithLive(LiveLongPoll), WithManualCommit())
		if err != nil {
			t.Fatal(err)
		}
		readers[i] = r
		go func() {
			m, err := r.Next(ctx)
			results <- result{i, m, err}
		}()
	}
	defer func() {
		for _, r := range readers {
			if err := r.Close(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}()
	// Every Reader has caught up (an empty stream) and waits in a long-poll.
	for srv.Waiting("") < n {
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d Readers waiting at the server", srv.Waiting(""), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waiting := time.Now()
	conns := srv.Connections()

	if err := parallel(func(i int) error {
		_, err := c.Append(ctx, name(i), fmt.Appendf(nil, `{"i":%d}`, i), AppendOptions{ContentType: "application/json"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for range n {
		res := <-results
		if res.err != nil {
			t.Fatalf("reader %d: %v", res.i, res.err)
		}
		if res.msg.Value.I != res.i {
			t.Fatalf("reader %d got message %d", res.i, res.msg.Value.I)
		}
	}
	delivered := time.Now()

	// The protocol actually used, and the connections it needed: at least
	// n / HTTP2MaxConcurrentStreams for the long-polls; the bound leaves
	// room for connections dialled while the first ones were still
	// negotiating their limits (HTTP/1.1 would need one per Reader).
	if p := srv.ProtocolRequests(); len(p) != 1 || p["HTTP/2.0"] == 0 {
		t.Fatalf("server saw %v, want HTTP/2.0 only", p)
	}
	minConns := n / testserver.HTTP2MaxConcurrentStreams
	if bound := 2*minConns + 8; conns.Open > bound || conns.Open < minConns {
		t.Errorf("%d connections open for %d waiting Readers, want %d to %d", conns.Open, n, minConns, bound)
	}
	if bound := 100; conns.Accepted > bound || conns.MaxOpen > bound {
		t.Errorf("%d connections accepted, at most %d open at once, for %d Readers; want at most %d", conns.Accepted, conns.MaxOpen, n, bound)
	}
	t.Logf("%d Readers: %+v; create %v, open until all wait %v, append and deliver %v",
		n, conns, created.Sub(start).Round(time.Millisecond), waiting.Sub(created).Round(time.Millisecond),
		delivered.Sub(waiting).Round(time.Millisecond))
}
