package hostile

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// EndlessBody answers GET with 200 and a body that never ends: for a JSON
// stream (the default content type is application/json) "[" followed by
// {"n":0}, forever; for other content types a repeated byte pattern; for an
// SSE request (live=sse) one "event: data" whose data lines never end.
func EndlessBody(opts ...Option) *Server {
	cfg := newConfig(protocol.ContentTypeJSON, opts)
	return start(cfg, func(ctx context.Context, w http.ResponseWriter, r *http.Request) {
		if answerNonGET(w, r, cfg.contentType) {
			return
		}
		setReadHeaders(w, r, cfg.contentType, offset(1), false)
		var body io.Reader
		switch {
		case isSSE(r):
			body = concat("event: data\n", newPattern("data: "+strings.Repeat("a", 58)+"\n", -1))
		case protocol.IsJSON(cfg.contentType):
			body = concat("[", newPattern(`{"n":0},`, -1))
		default:
			body = newPattern("endless ", -1)
		}
		deliver(ctx, w, body, writeStep, false, 0)
	})
}

// HugeSSELine answers GET with an SSE stream (whatever the live mode asked
// for) whose first event has a single data line of n bytes ('a', valid
// text and valid base64), then a control event, then ends. The default
// content type is text/plain. n may be up to 1 GiB or more; it is generated
// lazily.
func HugeSSELine(n int64, opts ...Option) *Server {
	cfg := newConfig("text/plain", opts)
	return start(cfg, func(ctx context.Context, w http.ResponseWriter, r *http.Request) {
		if answerNonGET(w, r, cfg.contentType) {
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		if !protocol.IsTextual(cfg.contentType) {
			h.Set(protocol.HeaderSSEDataEncoding, "base64")
		}
		body := concat("event: data\ndata: ", newPattern("a", n), "\n\n", control(offset(2), true))
		deliver(ctx, w, body, writeStep, false, 0)
	})
}

// HugeJSONMessage answers GET with a JSON array holding one message of n
// bytes, {"pad":"aaa…"} (n is raised to 10, the smallest such message), with
// Stream-Up-To-Date. The default content type is application/json. For an
// SSE request the array travels as the single data line of one event.
func HugeJSONMessage(n int64, opts ...Option) *Server {
	cfg := newConfig(protocol.ContentTypeJSON, opts)
	n = max(n, 10)
	message := func() io.Reader { return concat(`{"pad":"`, newPattern("a", n-10), `"}`) }
	return start(cfg, func(ctx context.Context, w http.ResponseWriter, r *http.Request) {
		if answerNonGET(w, r, cfg.contentType) {
			return
		}
		setReadHeaders(w, r, cfg.contentType, offset(2), true)
		var body io.Reader
		if isSSE(r) {
			body = concat("event: data\ndata: [", message(), "]\n\n", control(offset(2), true))
		} else {
			body = concat("[", message(), "]")
			if cfg.declareLength {
				w.Header().Set("Content-Length", strconv.FormatInt(n+2, 10))
			}
		}
		deliver(ctx, w, body, writeStep, false, 0)
	})
}

// TinyChunks answers GET with about total bytes of well-formed data,
// flushed every chunk bytes (chunk 1 = one HTTP chunk per byte): for JSON
// (the default content type) an array [0,0,…,0]; for other types 'a'
// bytes; for an SSE request one data event holding that array across
// "data: 0," lines, then a control event.
func TinyChunks(total int64, chunk int, opts ...Option) *Server {
	cfg := newConfig(protocol.ContentTypeJSON, opts)
	chunk = max(chunk, 1)
	return start(cfg, func(ctx context.Context, w http.ResponseWriter, r *http.Request) {
		if answerNonGET(w, r, cfg.contentType) {
			return
		}
		setReadHeaders(w, r, cfg.contentType, offset(2), true)
		var body io.Reader
		switch {
		case isSSE(r):
			k := max(total/9, 0)
			body = concat("event: data\ndata: [\n", newPattern("data: 0,\n", k*9), "data: 0\ndata: ]\n\n", control(offset(2), true))
		case protocol.IsJSON(cfg.contentType):
			k := max((total-3)/2, 0)
			body = concat("[", newPattern("0,", k*2), "0]")
		default:
			body = newPattern("a", max(total, 0))
		}
		deliver(ctx, w, body, chunk, true, 0)
	})
}

// OffsetBackwards answers every GET with data (WithBody; default [{"n":1}]
// for JSON, the default content type, else "x") and a Stream-Next-Offset
// lower than on the previous response, never up-to-date. An SSE request
// gets an endless stream of data and control events, one pair every
// interval (WithInterval), each control offset lower than the last. The
// offsets are 16-digit decimals counting down from 1000000 and stay at 0.
func OffsetBackwards(opts ...Option) *Server {
	var n atomic.Int64
	n.Store(1_000_001)
	return offsetServer(newConfig(protocol.ContentTypeJSON, opts), func() string { return offset(n.Add(-1)) })
}

// OffsetRepeat is OffsetBackwards with a Stream-Next-Offset that never
// changes: every response and every SSE control event carries
// "0000000000000042", so a client that follows it reads the same data
// forever.
func OffsetRepeat(opts ...Option) *Server {
	return offsetServer(newConfig(protocol.ContentTypeJSON, opts), func() string { return offset(42) })
}

func offsetServer(cfg config, next func() string) *Server {
	data := cfg.body
	if !cfg.bodySet {
		data = []byte("x")
		if protocol.IsJSON(cfg.contentType) {
			data = []byte(`[{"n":1}]`)
		}
	}
	return start(cfg, func(ctx context.Context, w http.ResponseWriter, r *http.Request) {
		if answerNonGET(w, r, cfg.contentType) {
			return
		}
		if !isSSE(r) {
			setReadHeaders(w, r, cfg.contentType, next(), false)
			_, _ = w.Write(data)
			return
		}
		setReadHeaders(w, r, cfg.contentType, "", false)
		rc := http.NewResponseController(w)
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			if _, err := fmt.Fprintf(w, "event: data\ndata: %s\n\n%s", data, control(next(), false)); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			t.Reset(cfg.interval)
		}
	})
}

// Redirect answers every request with a redirect (307 unless WithStatus) to
// the same path and query on a second server, Target(), whose URL names the
// host "localhost" instead of "127.0.0.1": another host, so that a client
// must not send it credentials. The target records every request and its
// headers, and answers GET with an empty, up-to-date, closed stream, and
// other methods minimally. Close closes both servers.
func Redirect(opts ...Option) *Server {
	cfg := newConfig("application/octet-stream", opts)
	target := start(cfg, func(_ context.Context, w http.ResponseWriter, r *http.Request) {
		if answerNonGET(w, r, cfg.contentType) {
			return
		}
		setReadHeaders(w, r, cfg.contentType, offset(1), true)
		w.Header().Set(protocol.HeaderClosed, "true")
		w.WriteHeader(http.StatusOK)
	})
	u, _ := url.Parse(target.URL)
	target.URL = "http://" + net.JoinHostPort("localhost", u.Port())
	s := start(cfg, func(_ context.Context, w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.Header().Set("Location", target.URL+r.URL.RequestURI())
		w.WriteHeader(cfg.status)
	})
	s.target = target
	return s
}

// Slowloris answers GET with headers at once (or dribbled too, with
// WithSlowHeaders) and then an endless body sent one byte every interval:
// a JSON array (the default content type), 'a' bytes for other types, or
// for an SSE request a repeating sequence of data and control events.
func Slowloris(interval time.Duration, opts ...Option) *Server {
	cfg := newConfig(protocol.ContentTypeJSON, opts)
	interval = max(interval, time.Microsecond)
	return start(cfg, func(ctx context.Context, w http.ResponseWriter, r *http.Request) {
		if answerNonGET(w, r, cfg.contentType) {
			return
		}
		var body io.Reader
		switch {
		case isSSE(r):
			body = newPattern("event: data\ndata: [1]\n\n"+control(offset(2), false), -1)
		case protocol.IsJSON(cfg.contentType):
			body = concat("[", newPattern(`{"n":0},`, -1))
		default:
			body = newPattern("a", -1)
		}
		setReadHeaders(w, r, cfg.contentType, offset(2), false)
		if !cfg.slowHeaders {
			w.WriteHeader(http.StatusOK)
			_ = http.NewResponseController(w).Flush()
			deliver(ctx, w, body, 1, true, interval)
			return
		}
		// Dribble the raw response, headers included, on the hijacked
		// connection; the body runs until the connection closes.
		var head strings.Builder
		head.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\n")
		_ = w.Header().Write(&head)
		head.WriteString("\r\n")
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer nc.Close()
		dribble(ctx, brw.Writer, concat(head.String(), body), interval)
	})
}

// dribble writes body one byte every interval to bw until a write fails
// or ctx is done.
func dribble(ctx context.Context, bw *bufio.Writer, body io.Reader, interval time.Duration) {
	t := time.NewTimer(interval)
	defer t.Stop()
	var b [1]byte
	for {
		if _, err := io.ReadFull(body, b[:]); err != nil {
			return
		}
		if bw.WriteByte(b[0]) != nil || bw.Flush() != nil {
			return
		}
		select {
		case <-t.C:
			t.Reset(interval)
		case <-ctx.Done():
			return
		}
	}
}
