//go:build interop

package interop

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/testsupport/faultproxy"
	"github.com/durablego/durable/offsetstore"
)

// The Writer against the Node reference server: a Writer feeding a live
// Reader, batches landing exactly once when responses are lost and the
// batches retried (the server must drop the duplicates), and a restarted
// writer fencing its predecessor through an epoch store.

func TestWriterAgainstNodeServer(t *testing.T) {
	n := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)

	// A Writer feeds a live Reader in each transport; the Writer then closes
	// the stream and the Reader ends with io.EOF.
	for _, mode := range []durable.LiveMode{durable.LiveLongPoll, durable.LiveSSE} {
		t.Run("writer feeds reader "+string(mode), func(t *testing.T) {
			t.Parallel()
			c, s := n.client(t)
			_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"})
			must(t, "create", err)
			w, err := durable.NewWriter(c, s, durable.JSONCodec[event]{}, durable.WithMaxBatch(9, 1<<20), durable.WithLinger(2*time.Millisecond), durable.WithRetry(fastRetry))
			must(t, "NewWriter", err)
			defer w.Close(ctx)
			const before, live = 25, 120
			for i := 0; i < before; i++ {
				must(t, "write", w.Write(ctx, ev(i)))
			}
			must(t, "flush", w.Flush(ctx))

			r, err := durable.NewReader(c, s, durable.JSONCodec[event]{}, durable.WithLive(mode), durable.WithRetry(fastRetry))
			must(t, "NewReader", err)
			defer r.Close(context.Background())
			readEvents(ctx, t, r, 0, before)
			if !r.Stats().UpToDate {
				t.Errorf("[Go Reader ↔ Node server] not up to date after the catch-up part")
			}
			// A failing writer cancels the read, so the test ends with its error.
			rctx, rcancel := context.WithCancel(ctx)
			defer rcancel()
			werr := make(chan error, 1)
			go func() {
				err := func() error {
					for i := before; i < before+live; i++ {
						if err := w.Write(ctx, ev(i)); err != nil {
							return err
						}
						if i%10 == 0 {
							time.Sleep(5 * time.Millisecond) // several live batches
						}
					}
					return w.CloseStream(ctx, ev(before+live))
				}()
				if err != nil {
					rcancel()
				}
				werr <- err
			}()
			if rctx.Err() == nil {
				readEvents(rctx, t, r, before, live+1)
			}
			must(t, "writer (write + CloseStream)", <-werr)
			wantEOF(ctx, t, r)
			wantHealthy(t, r, mode)
		})
	}

	// Writer batches land exactly once: pipelined, and through a proxy that
	// loses responses after the server applied the batch (the retry is a
	// duplicate the server must drop).
	t.Run("writer exactly once", func(t *testing.T) {
		t.Parallel()
		u, err := url.Parse(n.base)
		must(t, "parse base", err)
		proxy, err := faultproxy.New(u.Host)
		must(t, "faultproxy", err)
		defer proxy.Close()
		direct, s := n.client(t)
		var retries countingHooks
		viaProxy, _ := newRecordedClient(t, "http://"+proxy.Addr()+u.Path, "the Node server (through a fault proxy)", durable.WithHooks(&retries))
		_, err = direct.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"})
		must(t, "create", err)
		w, err := durable.NewWriter(viaProxy, s, durable.JSONCodec[event]{}, durable.WithMaxBatch(13, 1<<20), durable.WithMaxInFlight(4),
			durable.WithLinger(time.Millisecond), durable.WithRetry(fastRetry))
		must(t, "NewWriter", err)
		const total = 600
		for i := 0; i < total; i++ {
			if i == 200 || i == 400 {
				// The next responses are cut before a byte of them arrives.
				proxy.ResetAfter(0, faultproxy.Downstream, 3)
			}
			must(t, "write", w.Write(ctx, ev(i)))
		}
		flushErr := w.Flush(ctx)
		closeErr := w.Close(ctx)
		if flushErr != nil || closeErr != nil {
			t.Errorf("[Go Writer ↔ Node server] flush: %v; close: %v", flushErr, closeErr)
		}
		t.Logf("writer: %d retries, %d batches", retries.retries(), retries.batches())
		if retries.retries() == 0 {
			t.Errorf("the fault proxy caused no retry: the test did not exercise duplicates")
		}
		r, err := durable.NewReader(direct, s, durable.JSONCodec[event]{}, durable.WithLive(durable.LiveNone))
		must(t, "NewReader", err)
		defer r.Close(context.Background())
		for i := 0; ; i++ {
			m, err := r.Next(ctx)
			if errors.Is(err, durable.ErrCaughtUp) {
				if i != total {
					t.Errorf("[Go Writer ↔ Node server] the stream holds %d messages, want exactly %d", i, total)
				}
				break
			}
			must(t, "Next", err)
			if m.Value != ev(i) {
				t.Fatalf("[Go Writer ↔ Node server] message %d = %+v, want %+v (duplicate or reordered batch)", i, m.Value, ev(i))
			}
		}
	})

	// A restarted writer (same producer ID, epoch from the same store)
	// fences its predecessor.
	t.Run("writer fencing with an epoch store", func(t *testing.T) {
		t.Parallel()
		c, s := n.client(t)
		_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"})
		must(t, "create", err)
		store, err := offsetstore.OpenFile(filepath.Join(t.TempDir(), "epochs.json"))
		must(t, "open store", err)
		defer store.Close()
		opts := []durable.Option{durable.WithProducerID("interop-worker"), durable.WithEpochStore(store), durable.WithRetry(fastRetry)}
		old, err := durable.NewWriter(c, s, durable.JSONCodec[event]{}, opts...)
		must(t, "NewWriter (first incarnation)", err)
		_, err = old.WriteSync(ctx, ev(0))
		must(t, "first incarnation write", err)
		neu, err := durable.NewWriter(c, s, durable.JSONCodec[event]{}, opts...)
		must(t, "NewWriter (restarted)", err)
		defer neu.Close(ctx)
		_, err = neu.WriteSync(ctx, ev(1))
		must(t, "restarted write", err)
		if neu.Producer().Epoch <= old.Producer().Epoch {
			t.Errorf("restarted writer epoch %d, not above the first one's %d", neu.Producer().Epoch, old.Producer().Epoch)
		}
		_, err = old.WriteSync(ctx, ev(99))
		if !errors.Is(err, durable.ErrStaleEpoch) {
			t.Errorf("[Go Writer ↔ Node server] zombie write: %v, want ErrStaleEpoch", err)
		}
		_ = old.Close(ctx)
		must(t, "close stream", neu.CloseStream(ctx))
		_, msgs, last, err := readAll(ctx, c, s, durable.OffsetStart, true)
		must(t, "read", err)
		if d := diffMessages([]string{`{"i":0,"s":"event 0 ✓"}`, `{"i":1,"s":"event 1 ✓"}`}, msgs); d != "" || !last.Closed {
			t.Errorf("[Go Writer ↔ Node server] stream after fencing: %s (closed %v)", d, last.Closed)
		}
	})
}

// countingHooks counts Writer retries and settled batches.
type countingHooks struct {
	mu      sync.Mutex
	r, b    int
	lastErr error
}

func (h *countingHooks) OnBatch(ev durable.BatchEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.b++
	if ev.Err != nil {
		h.lastErr = ev.Err
	}
}

// OnRetry counts the retries of the proxied Client (its Writer), not the
// ends of outages.
func (h *countingHooks) OnRetry(ev durable.RetryEvent) {
	if ev.Recovered {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.r++
}

func (h *countingHooks) retries() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.r
}

func (h *countingHooks) batches() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.b
}
