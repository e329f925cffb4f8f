//go:build interop

package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable"
)

// The TypeScript reference client against `durable serve`.
//
// The Go SDK writes (and closes) the go-* streams and the catch-up part of
// the live-* streams; ts-client.mjs then writes its own ts-* streams, reads
// the go-* streams to EOF, and opens live sessions (long-poll and SSE) on the
// live-* streams. When a session reports "ready" the Go SDK appends more data
// and closes the stream, so the session must receive data appended after it
// started and observe EOF. Everything each side read is compared byte for
// byte with what the other side wrote, and with what the Go SDK reads back
// itself, so a mismatch names the side that broke.

// tsReport is the final JSON line of ts-client.mjs.
type tsReport struct {
	Event      string              `json:"event"`
	OK         bool                `json:"ok"`
	FailedStep string              `json:"failedStep"`
	Error      string              `json:"error"`
	Steps      []string            `json:"steps"`
	Written    map[string]tsStream `json:"written"`
	Read       map[string]tsStream `json:"read"`
	Live       map[string]tsStream `json:"live"`
	Exchanges  []tsExchange        `json:"exchanges"`
}

// tsStream is what the TS client wrote to, or read from, one stream.
type tsStream struct {
	Messages        []string       `json:"messages"` // JSON streams: JSON.stringify of each message
	Bytes           []byte         `json:"bytes"`    // other streams (base64 in the JSON)
	Closed          bool           `json:"closed"`
	StreamClosed    bool           `json:"streamClosed"`
	UpToDate        bool           `json:"upToDate"`
	FinalOffset     string         `json:"finalOffset"`
	Offset          string         `json:"offset"`
	ContentType     string         `json:"contentType"`
	Requests        map[string]int `json:"requests"`
	Batches         int            `json:"batches"`
	ProducerEpoch   int64          `json:"producerEpoch"`
	ProducerNextSeq int64          `json:"producerNextSeq"`
}

// tsExchange is one HTTP exchange recorded by ts-client.mjs.
type tsExchange struct {
	N          int               `json:"n"`
	Method     string            `json:"method"`
	URL        string            `json:"url"`
	ReqHeaders map[string]string `json:"reqHeaders"`
	ReqBody    string            `json:"reqBody"`
	Status     int               `json:"status"`
	RespHeader map[string]string `json:"respHeaders"`
	RespBody   string            `json:"respBody"`
	MS         int               `json:"ms"`
	Error      string            `json:"error"`
}

func formatTSExchanges(exs []tsExchange) string {
	var sb strings.Builder
	hdrs := func(prefix string, h map[string]string) {
		keys := make([]string, 0, len(h))
		for k := range h {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&sb, "%s%s: %s\n", prefix, k, h[k])
		}
	}
	for _, ex := range exs {
		fmt.Fprintf(&sb, "  #%d %s %s  (%d ms)\n", ex.N, ex.Method, ex.URL, ex.MS)
		hdrs("    > ", ex.ReqHeaders)
		if ex.ReqBody != "" {
			fmt.Fprintf(&sb, "    > body: %s\n", ex.ReqBody)
		}
		if ex.Status != 0 {
			fmt.Fprintf(&sb, "    < %d\n", ex.Status)
			hdrs("    < ", ex.RespHeader)
			if ex.RespBody != "" {
				fmt.Fprintf(&sb, "    < body: %s\n", ex.RespBody)
			}
		}
		if ex.Error != "" {
			fmt.Fprintf(&sb, "    ! %s\n", ex.Error)
		}
	}
	return sb.String()
}

// goStream is a stream the Go SDK writes for the TS client to read.
type goStream struct {
	name        string
	contentType string
	initial     [][]byte // appended before the TS client starts (JSON: one body per append)
	live        [][]byte // live-* streams: appended after the TS session is ready
	final       []byte   // appended atomically with the close (nil = plain close)
	liveMode    string   // live-* streams: "long-poll" or "sse"
	producer    bool     // appends (and the close) carry idempotent producer headers; one is sent twice
	writer      bool     // written by a durable.Writer (its messages batched as it likes) and closed by it
}

func (g goStream) isJSON() bool { return g.contentType == "application/json" }

// want is everything written to the stream: JSON messages or bytes.
func (g goStream) want(t *testing.T) (data []byte, msgs []string) {
	t.Helper()
	for _, part := range append(append(append([][]byte{}, g.initial...), g.live...), g.final) {
		if part == nil {
			continue
		}
		if g.isJSON() {
			m, err := splitJSON(part)
			if err != nil {
				t.Fatalf("bad test data for %s: %v", g.name, err)
			}
			msgs = append(msgs, m...)
		} else {
			data = append(data, part...)
		}
	}
	return data, msgs
}

func goStreams() []goStream {
	return []goStream{
		{
			name: "go-json", contentType: "application/json",
			initial: [][]byte{
				jsonBody(`{"from":"go","n":1}`, `{"esc":"tab\there \"q\" \\ <&>","emoji":"😀"}`, `[1,[2,3],{}]`),
				jsonBody(`"just a string"`),
				jsonBody(`1.5`, `-2`, `0`, `true`, `null`),
			},
			final: jsonBody(`{"from":"go","final":true}`),
		},
		{
			name: "go-bytes", contentType: "application/octet-stream",
			initial: [][]byte{testBytes(1, 300), testBytes(2, 5000), []byte("event: data\ndata: x\r\n\r\n")},
			final:   []byte{0, 1, 2},
		},
		{
			name: "go-text", contentType: "text/plain",
			initial: [][]byte{[]byte("hello\n"), []byte("data: sse-looking\n\nevent: control\n"), []byte("ünïcode ✓")},
		},
		{
			name: "go-producer", contentType: "application/json", producer: true,
			initial: [][]byte{
				jsonBody(`{"producer":"go","seq":0}`, `{"producer":"go","seq":0,"k":1}`),
				jsonBody(`{"producer":"go","seq":1}`),
				jsonBody(`{"producer":"go","seq":2}`, `[]`, `{}`),
			},
			final: jsonBody(`{"producer":"go","final":true}`),
		},
		{
			name: "go-writer", contentType: "application/json", writer: true,
			initial: [][]byte{
				jsonBody(`{"writer":"go","i":0}`, `{"writer":"go","i":1,"s":"ünïcode ✓"}`, `[1,2]`, `"s"`, `null`, `{}`),
				jsonBody(`{"writer":"go","i":2}`, `{"writer":"go","i":3}`),
			},
			final: jsonBody(`{"writer":"go","final":true}`),
		},
		{
			name: "go-writer-bytes", contentType: "application/octet-stream", writer: true,
			initial: [][]byte{testBytes(21, 500), testBytes(22, 3), testBytes(23, 9000)},
			final:   []byte("final bytes"),
		},
		{
			name: "live-lp-json", contentType: "application/json", liveMode: "long-poll",
			initial: [][]byte{jsonBody(`{"phase":"catch-up","i":0}`)},
			live:    [][]byte{jsonBody(`{"phase":"live","i":1}`), jsonBody(`{"phase":"live","i":2}`, `{"phase":"live","i":3}`), jsonBody(`[4]`)},
		},
		{
			name: "live-sse-json", contentType: "application/json", liveMode: "sse",
			initial: [][]byte{jsonBody(`{"phase":"catch-up","i":0}`, `"x"`)},
			live:    [][]byte{jsonBody(`{"phase":"live","i":1}`), jsonBody(`{"phase":"live","i":2}`, `{"phase":"live","i":3}`)},
			final:   jsonBody(`{"phase":"final"}`),
		},
		{
			name: "live-lp-bytes", contentType: "application/octet-stream", liveMode: "long-poll",
			initial: [][]byte{testBytes(3, 1000)},
			live:    [][]byte{testBytes(4, 700), []byte{0}, testBytes(5, 2000)},
			final:   []byte("end"),
		},
		{
			name: "live-sse-bytes", contentType: "application/octet-stream", liveMode: "sse",
			initial: [][]byte{testBytes(6, 257)},
			live:    [][]byte{testBytes(7, 3), testBytes(8, 4096), []byte("\n\ndata: \r\n")},
		},
		{
			name: "live-sse-text", contentType: "text/plain", liveMode: "sse",
			initial: [][]byte{[]byte("first line\n")},
			live:    [][]byte{[]byte("second\nthird\n"), []byte("data: fake\n\n"), []byte("ünïcode ✓ end")},
		},
	}
}

// append writes one part; JSON parts are sent as given (one array body).
func appendPart(ctx context.Context, c *durable.Client, stream, contentType string, part []byte) error {
	_, err := c.Append(ctx, stream, part, durable.AppendOptions{ContentType: contentType})
	return err
}

func TestTSClientAgainstDurableServe(t *testing.T) {
	e := needEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	base, server := startDurableServe(t, e, "--long-poll-timeout", "1s", "--sse-close-interval", "2s")
	t.Cleanup(func() {
		if s := server.stderr.String(); t.Failed() && s != "" {
			t.Logf("durable serve stderr:\n%s", s)
		}
	})
	streamBase := base + "/v1/stream/"
	run := fmt.Sprintf("run%d", time.Now().UnixNano())
	name := func(s string) string { return run + "-" + s }
	c, _ := newRecordedClient(t, streamBase, "durable serve")

	// The Go SDK writes its streams; go-* are closed before the TS client
	// reads them, live-* get their live part when the TS session is ready.
	streams := goStreams()
	byName := map[string]goStream{}
	for _, g := range streams {
		byName[g.name] = g
		if _, err := c.Create(ctx, name(g.name), durable.CreateOptions{ContentType: g.contentType}); err != nil {
			t.Fatalf("[Go SDK → durable serve] create %s: %v", g.name, err)
		}
		if g.writer {
			if err := writeWithWriter(ctx, c, name(g.name), g); err != nil {
				t.Fatalf("[Go Writer → durable serve] %s: %v", g.name, err)
			}
			continue
		}
		for i, part := range g.initial {
			var err error
			if g.producer {
				err = producerAppends(ctx, c, name(g.name), g, i, part)
			} else if g.isJSON() && i == 1 {
				// One message through AppendJSON, the rest as raw array bodies.
				var m []json.RawMessage
				if err = json.Unmarshal(part, &m); err == nil {
					_, err = c.AppendJSON(ctx, name(g.name), m[0], durable.AppendOptions{})
				}
			} else {
				err = appendPart(ctx, c, name(g.name), g.contentType, part)
			}
			if err != nil {
				t.Fatalf("[Go SDK → durable serve] append to %s: %v", g.name, err)
			}
		}
		if g.liveMode == "" {
			var p *durable.Producer
			if g.producer {
				p = &durable.Producer{ID: "go-" + run, Seq: int64(len(g.initial))}
			}
			if _, err := c.CloseStream(ctx, name(g.name), g.final, durable.AppendOptions{ContentType: contentTypeIf(g.final, g.contentType), Producer: p}); err != nil {
				t.Fatalf("[Go SDK → durable serve] close %s: %v", g.name, err)
			}
		}
	}

	// Run the TS client; append the live parts when it is ready.
	ts := startProc(t, "ts-client.mjs", e.dir, nil, e.node, "ts-client.mjs", streamBase, run)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		liveErr []string
		ready   = map[string]bool{}
		report  *tsReport
	)
	liveAppend := func(g goStream) {
		defer wg.Done()
		tick := time.NewTicker(150 * time.Millisecond)
		defer tick.Stop()
		fail := func(format string, args ...any) {
			mu.Lock()
			liveErr = append(liveErr, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
		for _, part := range g.live {
			select {
			case <-tick.C:
			case <-ctx.Done():
				fail("%s: %v", g.name, ctx.Err())
				return
			}
			if err := appendPart(ctx, c, name(g.name), g.contentType, part); err != nil {
				fail("[Go SDK → durable serve] live append to %s: %v", g.name, err)
				return
			}
		}
		<-tick.C
		if _, err := c.CloseStream(ctx, name(g.name), g.final, durable.AppendOptions{ContentType: contentTypeIf(g.final, g.contentType)}); err != nil {
			fail("[Go SDK → durable serve] close %s: %v", g.name, err)
		}
	}
	var stray []string
read:
	for {
		select {
		case line, ok := <-ts.lines:
			if !ok {
				break read
			}
			var ev struct {
				Event  string `json:"event"`
				Stream string `json:"stream"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				stray = append(stray, line)
				continue
			}
			switch ev.Event {
			case "ready":
				short := strings.TrimPrefix(ev.Stream, run+"-")
				g, ok := byName[short]
				if !ok || g.liveMode == "" || ready[short] {
					t.Errorf("[TS client] unexpected ready event for %q", ev.Stream)
					continue
				}
				ready[short] = true
				wg.Add(1)
				go liveAppend(g)
			case "report":
				report = &tsReport{}
				if err := json.Unmarshal([]byte(line), report); err != nil {
					t.Fatalf("[TS client] bad report: %v\n%s", err, line)
				}
			default:
				stray = append(stray, line)
			}
		case <-ctx.Done():
			t.Fatalf("[TS client] no report within the time limit; stderr:\n%s", ts.stderr)
		}
	}
	<-ts.done
	wg.Wait()
	for _, s := range liveErr {
		t.Error(s)
	}
	if len(stray) > 0 {
		t.Errorf("[TS client] ts-client.mjs wrote non-JSON-event lines to stdout: %q", stray)
	}
	if report == nil {
		t.Fatalf("[TS client] ts-client.mjs exited (%v) without a report; stderr:\n%s", ts.err, ts.stderr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last HTTP exchanges of the TS client with durable serve (oldest first):\n%s", formatTSExchanges(report.Exchanges))
			if s := ts.stderr.String(); s != "" {
				t.Logf("ts-client.mjs stderr:\n%s", s)
			}
		}
	})
	if !report.OK {
		t.Fatalf("[TS client] step %q failed: %s\n(steps done: %q)", report.FailedStep, report.Error, report.Steps)
	}
	t.Logf("TS client finished %d steps", len(report.Steps))

	// What the TS client wrote: read back by the Go SDK (catch-up and SSE).
	t.Run("TS wrote, Go reads", func(t *testing.T) {
		for _, tc := range []struct {
			stream, contentType string
		}{
			{"ts-json", "application/json"},
			{"ts-bytes", "application/octet-stream"},
			{"ts-text", "text/plain"},
			{"ts-prod", "application/json"},
		} {
			t.Run(tc.stream, func(t *testing.T) {
				w, ok := report.Written[tc.stream]
				if !ok {
					t.Fatalf("[TS client] report has nothing written to %s", tc.stream)
				}
				c, _ := newRecordedClient(t, streamBase, "durable serve")
				isJSON := tc.contentType == "application/json"
				info, err := c.Head(ctx, name(tc.stream))
				if err != nil {
					t.Fatalf("[Go SDK ↔ durable serve] head: %v", err)
				}
				if info.ContentType != tc.contentType || !info.Closed || string(info.NextOffset) != w.FinalOffset {
					t.Errorf("[TS client or durable serve] head = {ContentType %q, Closed %v, NextOffset %q}; the TS client created %q, closed it and was told final offset %q",
						info.ContentType, info.Closed, info.NextOffset, tc.contentType, w.FinalOffset)
				}
				data, msgs, last, err := readAll(ctx, c, name(tc.stream), durable.OffsetStart, isJSON)
				if err != nil {
					t.Fatalf("[Go SDK ↔ durable serve] catch-up read: %v", err)
				}
				if !last.Closed || string(last.NextOffset) != w.FinalOffset {
					t.Errorf("[Go SDK ↔ durable serve] catch-up read ended at %q closed=%v, want %q closed", last.NextOffset, last.Closed, w.FinalOffset)
				}
				sseData, sseMsgs, _, _, err := sseAll(ctx, c, name(tc.stream), durable.OffsetStart, tc.contentType)
				if err != nil {
					t.Fatalf("[Go SDK ↔ durable serve] SSE read: %v", err)
				}
				for _, live := range []durable.LiveMode{durable.LiveLongPoll, durable.LiveSSE} {
					rd, rm, err := readWithReader(ctx, c, name(tc.stream), isJSON, live)
					if err != nil {
						t.Errorf("[Go Reader ↔ durable serve] %s Reader: %v", live, err)
						continue
					}
					if d := diffMessages(w.Messages, rm) + diffBytes(w.Bytes, rd); d != "" {
						t.Errorf("[Go Reader or TS client] the Go Reader (%s) read other data than the TS client wrote: %s", live, d)
					}
				}
				var catchDiff, sseDiff string
				if isJSON {
					catchDiff, sseDiff = diffMessages(w.Messages, msgs), diffMessages(w.Messages, sseMsgs)
				} else {
					catchDiff, sseDiff = diffBytes(w.Bytes, data), diffBytes(w.Bytes, sseData)
				}
				// Both reads wrong: the data on the server is not what the TS
				// client says it wrote. One read wrong: that read path broke.
				catchSide, sseSide := "Go SDK or durable serve, catch-up path", "Go SDK or durable serve, SSE path"
				if catchDiff != "" && sseDiff != "" {
					catchSide, sseSide = "TS client or durable serve, write path", "TS client or durable serve, write path"
				}
				if catchDiff != "" {
					t.Errorf("[%s] the Go SDK's catch-up read differs from what the TS client wrote: %s", catchSide, catchDiff)
				}
				if sseDiff != "" {
					t.Errorf("[%s] the Go SDK's SSE read differs from what the TS client wrote: %s", sseSide, sseDiff)
				}
			})
		}
	})

	// What the Go SDK wrote: read by the TS client (catch-up and live).
	t.Run("Go wrote, TS reads", func(t *testing.T) {
		for _, g := range streams {
			t.Run(g.name, func(t *testing.T) {
				var got tsStream
				var ok bool
				if g.liveMode == "" {
					got, ok = report.Read[g.name]
				} else {
					got, ok = report.Live[g.name]
				}
				if !ok {
					t.Fatalf("[TS client] report has no read of %s", g.name)
				}
				c, _ := newRecordedClient(t, streamBase, "durable serve")
				wantData, wantMsgs := g.want(t)
				// The Go SDK's own read decides which side broke.
				goData, goMsgs, last, err := readAll(ctx, c, name(g.name), durable.OffsetStart, g.isJSON())
				if err != nil {
					t.Fatalf("[Go SDK ↔ durable serve] catch-up read: %v", err)
				}
				var goDiff, tsDiff string
				if g.isJSON() {
					goDiff, tsDiff = diffMessages(wantMsgs, goMsgs), diffMessages(wantMsgs, got.Messages)
				} else {
					goDiff, tsDiff = diffBytes(wantData, goData), diffBytes(wantData, got.Bytes)
				}
				if goDiff != "" {
					t.Errorf("[Go SDK or durable serve] the Go SDK's own read differs from what it wrote: %s", goDiff)
				}
				if tsDiff != "" {
					side := "TS client"
					if goDiff != "" {
						side = "durable serve (both clients)"
					}
					t.Errorf("[%s] the TS client's read (%s) differs from what the Go SDK wrote: %s", side, readKind(g), tsDiff)
				}
				if !got.StreamClosed {
					t.Errorf("[TS client] did not observe the stream closed (EOF)")
				}
				if got.Offset != string(last.NextOffset) {
					t.Errorf("[TS client] ended at offset %q, the Go SDK ended at the final offset %q", got.Offset, last.NextOffset)
				}
				if got.ContentType != g.contentType {
					t.Errorf("[TS client or durable serve] TS saw content type %q, stream has %q", got.ContentType, g.contentType)
				}
				switch g.liveMode {
				case "long-poll":
					if got.Requests["longPoll"] == 0 {
						t.Errorf("[TS client] the long-poll session made no live=long-poll request: %v", got.Requests)
					}
				case "sse":
					if got.Requests["sse"] == 0 {
						t.Errorf("[TS client] the SSE session made no live=sse request: %v", got.Requests)
					}
				}
				if g.liveMode != "" {
					t.Logf("TS %s session: %d batches, requests %v", g.liveMode, got.Batches, got.Requests)
				}
			})
		}
	})
}

// producerAppends sends part as batch seq of an idempotent producer; batch 1
// is sent twice, and the server must drop the second copy.
func producerAppends(ctx context.Context, c *durable.Client, stream string, g goStream, seq int, part []byte) error {
	p := &durable.Producer{ID: "go-" + strings.SplitN(stream, "-", 2)[0], Seq: int64(seq)}
	sends := 1
	if seq == 1 {
		sends = 2
	}
	for k := 0; k < sends; k++ {
		r, err := c.Append(ctx, stream, part, durable.AppendOptions{ContentType: g.contentType, Producer: p})
		if err != nil {
			return err
		}
		if r.Duplicate != (k == 1) {
			return fmt.Errorf("producer seq %d send %d: Duplicate = %v", seq, k+1, r.Duplicate)
		}
	}
	return nil
}

// writeWithWriter writes g's messages (JSON) or parts (bytes) with a
// durable.Writer in small batches and closes the stream with the final part.
func writeWithWriter(ctx context.Context, c *durable.Client, stream string, g goStream) error {
	if g.isJSON() {
		w, err := durable.NewWriter(c, stream, durable.JSONCodec[json.RawMessage]{}, durable.WithMaxBatch(3, 1<<20), durable.WithMaxInFlight(2))
		if err != nil {
			return err
		}
		defer w.Close(ctx)
		for _, part := range g.initial {
			var msgs []json.RawMessage
			if err := json.Unmarshal(part, &msgs); err != nil {
				return err
			}
			for _, m := range msgs {
				if err := w.Write(ctx, m); err != nil {
					return err
				}
			}
		}
		var final []json.RawMessage
		if err := json.Unmarshal(g.final, &final); err != nil {
			return err
		}
		if err := w.CloseStream(ctx, final...); err != nil {
			return err
		}
		return w.Close(ctx)
	}
	w, err := durable.NewWriter(c, stream, durable.BytesCodec{}, durable.WithMaxBatch(1000, 10000))
	if err != nil {
		return err
	}
	defer w.Close(ctx)
	for _, part := range g.initial {
		if err := w.Write(ctx, part); err != nil {
			return err
		}
	}
	if err := w.CloseStream(ctx, g.final); err != nil {
		return err
	}
	return w.Close(ctx)
}

// readWithReader reads a stream to EOF with a durable.Reader.
func readWithReader(ctx context.Context, c *durable.Client, stream string, isJSON bool, live durable.LiveMode) (data []byte, msgs []string, err error) {
	if isJSON {
		r, err := durable.NewReader(c, stream, durable.JSONCodec[json.RawMessage]{}, durable.WithLive(live))
		if err != nil {
			return nil, nil, err
		}
		defer r.Close(context.Background())
		for {
			m, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				return nil, msgs, nil
			}
			if err != nil {
				return nil, msgs, err
			}
			msgs = append(msgs, string(m.Data))
		}
	}
	r, err := durable.NewReader(c, stream, durable.BytesCodec{}, durable.WithLive(live))
	if err != nil {
		return nil, nil, err
	}
	defer r.Close(context.Background())
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return data, nil, nil
		}
		if err != nil {
			return data, nil, err
		}
		data = append(data, m.Value...)
	}
}

func readKind(g goStream) string {
	if g.liveMode == "" {
		return "catch-up"
	}
	return g.liveMode
}

// contentTypeIf returns ct when data is non-empty (a close with a final
// message needs it), else "".
func contentTypeIf(data []byte, ct string) string {
	if len(data) == 0 {
		return ""
	}
	return ct
}
