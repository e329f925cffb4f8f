//go:build interop

package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
)

// The Reader against the Node reference server: live tails in every
// transport (JSON and bytes), a start at "now", and resume from a position
// saved in an offsetstore.File in the middle of a batch.

type event struct {
	I int    `json:"i"`
	S string `json:"s,omitempty"`
}

func ev(i int) event { return event{I: i, S: fmt.Sprintf("event %d ✓", i)} }

// fastRetry keeps retries quick against a loopback server.
var fastRetry = durable.RetryPolicy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2, Jitter: 0.2, MaxElapsed: 30 * time.Second}

// readEvents reads n messages from r, failing the test on an error or on a
// message out of order (each must be ev(from+k)).
func readEvents(ctx context.Context, t *testing.T, r *durable.Reader[event], from, n int) []durable.Message[event] {
	t.Helper()
	var out []durable.Message[event]
	for k := 0; k < n; k++ {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("[Go Reader ↔ Node server] Next after %d of %d messages (position %+v): %v", k, n, r.Stats().Position, err)
		}
		if want := ev(from + k); m.Value != want {
			t.Fatalf("[Go Reader ↔ Node server] message %d = %+v (raw %q), want %+v", from+k, m.Value, m.Data, want)
		}
		out = append(out, m)
	}
	return out
}

// wantEOF checks that the Reader ends with io.EOF, twice, without new requests.
// wantHealthy checks what a Reader of a healthy Node server must show: the
// transport it was asked for (LiveAuto stays on SSE: no fallback) and few
// retries.
func wantHealthy(t *testing.T, r *durable.Reader[event], mode durable.LiveMode) {
	t.Helper()
	want := mode
	if mode == durable.LiveAuto {
		want = durable.LiveSSE
	}
	if got := r.Stats().Live; got != want {
		t.Errorf("[Go Reader ↔ Node server] transport %q, want %q", got, want)
	}
	st := r.Stats()
	t.Logf("%s: %d delivered, %d requests, %d retries, %d stale", mode, st.Delivered, st.Requests, st.Retries, st.Stale)
	if st.Retries > 5 {
		t.Errorf("[Go Reader ↔ Node server] %d retries on a healthy server", st.Retries)
	}
}

func wantEOF(ctx context.Context, t *testing.T, r *durable.Reader[event]) {
	t.Helper()
	m, err := r.Next(ctx)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("[Go Reader ↔ Node server] after the last message: Next = %+v, %v; want io.EOF", m.Value, err)
	}
	before := r.Stats().Requests
	if _, err := r.Next(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("[Go Reader] second Next after EOF: %v, want io.EOF", err)
	}
	if after := r.Stats().Requests; after != before {
		t.Errorf("[Go Reader] Next after EOF sent %d more requests", after-before)
	}
}

func TestReaderAgainstNodeServer(t *testing.T) {
	n := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)

	// Client appends (batches of 1 to 9 messages) feed a live Reader in
	// each transport; a close ends it with io.EOF.
	for _, mode := range []durable.LiveMode{durable.LiveLongPoll, durable.LiveSSE, durable.LiveAuto} {
		t.Run("tail "+string(mode), func(t *testing.T) {
			t.Parallel()
			c, s := n.client(t)
			_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"})
			must(t, "create", err)
			const before, live = 25, 120
			must(t, "append", appendEvents(ctx, c, s, 0, before, false))
			r, err := durable.NewReader(c, s, durable.JSONCodec[event]{}, durable.WithLive(mode), durable.WithRetry(fastRetry))
			must(t, "NewReader", err)
			defer r.Close(context.Background())
			readEvents(ctx, t, r, 0, before)
			if !r.Stats().UpToDate {
				t.Errorf("[Go Reader ↔ Node server] not up to date after the catch-up part")
			}
			// A failing appender cancels the read, so the test ends with its error.
			rctx, rcancel := context.WithCancel(ctx)
			defer rcancel()
			aerr := make(chan error, 1)
			go func() {
				err := appendEvents(ctx, c, s, before, live+1, true)
				if err != nil {
					rcancel()
				}
				aerr <- err
			}()
			readEvents(rctx, t, r, before, live+1)
			must(t, "appends + close", <-aerr)
			wantEOF(ctx, t, r)
			wantHealthy(t, r, mode)
		})
	}

	// A Reader started at "now" skips what the stream already holds.
	for _, mode := range []durable.LiveMode{durable.LiveLongPoll, durable.LiveSSE} {
		t.Run("start now "+string(mode), func(t *testing.T) {
			t.Parallel()
			c, s := n.client(t)
			_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json", Data: jsonBody(`{"i":-1}`, `{"i":-2}`)})
			must(t, "create", err)
			r, err := durable.NewReader(c, s, durable.JSONCodec[event]{}, durable.WithStart(durable.OffsetNow), durable.WithLive(mode), durable.WithRetry(fastRetry))
			must(t, "NewReader", err)
			defer r.Close(context.Background())
			go func() {
				// Append once the Reader has resolved "now" with a request.
				for r.Stats().Requests == 0 && ctx.Err() == nil {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(100 * time.Millisecond)
				_, _ = c.Append(ctx, s, jsonBody(`{"i":0,"s":"event 0 ✓"}`, `{"i":1,"s":"event 1 ✓"}`), durable.AppendOptions{ContentType: "application/json"})
				_, _ = c.CloseStream(ctx, s, nil, durable.AppendOptions{})
			}()
			readEvents(ctx, t, r, 0, 2)
			wantEOF(ctx, t, r)
		})
	}

	// A byte stream over SSE (base64 on the wire) and long-poll: the
	// concatenation of the messages is the bytes appended.
	for _, mode := range []durable.LiveMode{durable.LiveSSE, durable.LiveLongPoll} {
		t.Run("tail bytes "+string(mode), func(t *testing.T) {
			t.Parallel()
			c, s := n.client(t)
			_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/octet-stream"})
			must(t, "create", err)
			r, err := durable.NewReader(c, s, durable.BytesCodec{}, durable.WithLive(mode), durable.WithRetry(fastRetry))
			must(t, "NewReader", err)
			defer r.Close(context.Background())
			var want []byte
			for i := 0; i < 20; i++ {
				want = append(want, testBytes(uint32(i), 100+i*37)...)
			}
			rctx, rcancel := context.WithCancel(ctx)
			defer rcancel()
			aerr := make(chan error, 1)
			go func() {
				err := func() error {
					for i := 0; i < 20; i++ {
						if i%5 == 0 {
							time.Sleep(20 * time.Millisecond)
						}
						if _, err := c.Append(ctx, s, testBytes(uint32(i), 100+i*37), durable.AppendOptions{ContentType: "application/octet-stream"}); err != nil {
							return err
						}
					}
					_, err := c.CloseStream(ctx, s, nil, durable.AppendOptions{})
					return err
				}()
				if err != nil {
					rcancel()
				}
				aerr <- err
			}()
			var got []byte
			for {
				m, err := r.Next(rctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					rcancel()
					t.Fatalf("[Go Reader ↔ Node server] Next: %v (appender: %v)", err, <-aerr)
				}
				got = append(got, m.Value...)
			}
			must(t, "appends + close", <-aerr)
			if d := diffBytes(want, got); d != "" {
				t.Errorf("[Go Reader ↔ Node server] bytes read over %s differ from the bytes appended: %s", mode, d)
			}
		})
	}

	// Resume from a position saved in an offsetstore.File, in the middle of a
	// batch, across a "restart" (new store handle, new Reader).
	t.Run("resume from offsetstore.File", func(t *testing.T) {
		t.Parallel()
		c, s := n.client(t)
		_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"})
		must(t, "create", err)
		// Three appends of ten messages: every read returns whole batches.
		for b := 0; b < 3; b++ {
			var msgs []string
			for i := b * 10; i < b*10+10; i++ {
				msgs = append(msgs, fmt.Sprintf(`{"i":%d,"s":"event %d ✓"}`, i, i))
			}
			_, err := c.Append(ctx, s, jsonBody(msgs...), durable.AppendOptions{ContentType: "application/json"})
			must(t, "append", err)
		}
		path := filepath.Join(t.TempDir(), "positions.json")
		const key = "interop-consumer"
		store, err := offsetstore.OpenFile(path)
		must(t, "open store", err)
		r, err := durable.NewReader(c, s, durable.JSONCodec[event]{}, durable.WithStore(store), durable.WithKey(key), durable.WithManualCommit(), durable.WithLive(durable.LiveNone))
		must(t, "NewReader", err)
		got := readEvents(ctx, t, r, 0, 14)
		must(t, "commit", r.Commit(ctx, got[13].Position))
		must(t, "reader close", r.Close(context.Background()))
		must(t, "store close", store.Close())
		t.Logf("saved position after message 13: %+v", got[13].Position)

		// More data while the consumer is down.
		_, err = c.Append(ctx, s, jsonBody(`{"i":30,"s":"event 30 ✓"}`), durable.AppendOptions{ContentType: "application/json"})
		must(t, "append", err)

		store, err = offsetstore.OpenFile(path)
		must(t, "reopen store", err)
		defer store.Close()
		pos, ok, err := store.Load(ctx, key)
		must(t, "load", err)
		if !ok || pos != got[13].Position {
			t.Fatalf("[offsetstore] loaded %+v (found %v), want %+v", pos, ok, got[13].Position)
		}
		r2, err := durable.NewReader(c, s, durable.JSONCodec[event]{}, durable.WithStore(store), durable.WithKey(key), durable.WithManualCommit(), durable.WithLive(durable.LiveLongPoll), durable.WithRetry(fastRetry))
		must(t, "NewReader after restart", err)
		defer r2.Close(context.Background())
		rest := readEvents(ctx, t, r2, 14, 17)
		must(t, "commit", r2.Commit(ctx, rest[len(rest)-1].Position))
		// Then live: a close ends it.
		go func() {
			time.Sleep(100 * time.Millisecond)
			_, _ = c.CloseStream(ctx, s, jsonBody(`{"i":31,"s":"event 31 ✓"}`), durable.AppendOptions{ContentType: "application/json"})
		}()
		last := readEvents(ctx, t, r2, 31, 1)
		must(t, "commit", r2.Commit(ctx, last[0].Position))
		wantEOF(ctx, t, r2)
		// A third start from the store: nothing left but EOF.
		r3, err := durable.NewReader(c, s, durable.JSONCodec[event]{}, durable.WithStore(store), durable.WithKey(key), durable.WithManualCommit())
		must(t, "NewReader at the end", err)
		defer r3.Close(context.Background())
		wantEOF(ctx, t, r3)
	})
}

// appendEvents appends ev(from) .. ev(from+n-1) in JSON batches of 1 to 9
// messages; with closeLast the last batch closes the stream.
func appendEvents(ctx context.Context, c *durable.Client, s string, from, n int, closeLast bool) error {
	for i, size := from, 1; i < from+n; size = size%9 + 1 {
		var msgs []string
		for k := 0; k < size && i < from+n; k++ {
			b, err := json.Marshal(ev(i))
			if err != nil {
				return err
			}
			msgs = append(msgs, string(b))
			i++
		}
		var err error
		if closeLast && i == from+n {
			_, err = c.CloseStream(ctx, s, jsonBody(msgs...), durable.AppendOptions{ContentType: "application/json"})
		} else {
			_, err = c.Append(ctx, s, jsonBody(msgs...), durable.AppendOptions{ContentType: "application/json"})
		}
		if err != nil {
			return err
		}
		if size == 9 {
			time.Sleep(5 * time.Millisecond) // several live reads
		}
	}
	return nil
}
