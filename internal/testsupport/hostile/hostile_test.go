package hostile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/durablego/durable/internal/protocol"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// countingWriter counts bytes and checks they all equal want (0 = any).
type countingWriter struct {
	n    int64
	want byte
	bad  bool
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.want != 0 && len(bytes.Trim(p, string(w.want))) > 0 {
		w.bad = true
	}
	w.n += int64(len(p))
	return len(p), nil
}

func TestPatternReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		n       int64
	}{
		{"a", 0},
		{"a", 1},
		{"ab", 5},
		{`{"n":0},`, 100_003},
		{strings.Repeat("xyz", 5000), 70_001},
	}
	for _, tt := range tests {
		t.Run(tt.pattern[:min(len(tt.pattern), 8)], func(t *testing.T) {
			t.Parallel()
			got, err := io.ReadAll(io.LimitReader(newPattern(tt.pattern, tt.n), tt.n+10))
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Repeat(tt.pattern, int(tt.n)/len(tt.pattern)+1)[:tt.n]
			if string(got) != want {
				t.Fatalf("got %d bytes, want %d (mismatch)", len(got), len(want))
			}
		})
	}
}

// TestGeneratedBodies is not parallel so that its allocation check sees
// only its own traffic.
func TestGeneratedBodies(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name  string
		srv   func() *Server
		query string
		check func(t *testing.T, resp *http.Response)
	}{
		{
			name: "huge SSE line",
			srv:  func() *Server { return HugeSSELine(32 * mib) },
			check: func(t *testing.T, resp *http.Response) {
				br := bufio.NewReader(resp.Body)
				expectPrefix(t, br, "event: data\ndata: ")
				cw := &countingWriter{want: 'a'}
				line, err := io.Copy(cw, io.LimitReader(br, 32*mib))
				if err != nil || line != 32*mib || cw.bad {
					t.Fatalf("data line: %d bytes (bad=%v), err %v", line, cw.bad, err)
				}
				rest, _ := io.ReadAll(br)
				if !strings.HasPrefix(string(rest), "\n\nevent: control\ndata: {") {
					t.Fatalf("after the line: %q", rest)
				}
			},
		},
		{
			name: "huge JSON message",
			srv:  func() *Server { return HugeJSONMessage(8*mib, WithContentLength()) },
			check: func(t *testing.T, resp *http.Response) {
				if resp.ContentLength != 8*mib+2 || !protocol.IsJSON(resp.Header.Get("Content-Type")) {
					t.Fatalf("Content-Length %d, Content-Type %q", resp.ContentLength, resp.Header.Get("Content-Type"))
				}
				br := bufio.NewReader(resp.Body)
				expectPrefix(t, br, `[{"pad":"`)
				cw := &countingWriter{want: 'a'}
				if n, err := io.Copy(cw, io.LimitReader(br, 8*mib-10)); n != 8*mib-10 || cw.bad {
					t.Fatalf("padding: %d bytes (bad=%v), err %v", n, cw.bad, err)
				}
				if rest, _ := io.ReadAll(br); string(rest) != `"}]` {
					t.Fatalf("message ends %q", rest)
				}
			},
		},
		{
			name: "endless body",
			srv:  func() *Server { return EndlessBody() },
			check: func(t *testing.T, resp *http.Response) {
				br := bufio.NewReader(resp.Body)
				expectPrefix(t, br, `[{"n":0},{"n":0},`)
				if n, err := io.Copy(io.Discard, io.LimitReader(br, 16*mib)); n != 16*mib {
					t.Fatalf("endless body ended after %d bytes: %v", n, err)
				}
			},
		},
		{
			name:  "endless SSE event",
			srv:   func() *Server { return EndlessBody() },
			query: "?offset=-1&live=sse",
			check: func(t *testing.T, resp *http.Response) {
				br := bufio.NewReader(resp.Body)
				expectPrefix(t, br, "event: data\ndata: aaa")
				if n, _ := io.Copy(io.Discard, io.LimitReader(br, 8*mib)); n != 8*mib {
					t.Fatalf("endless SSE ended after %d bytes", n)
				}
			},
		},
		{
			name: "tiny chunks JSON",
			srv:  func() *Server { return TinyChunks(20_001, 1) },
			check: func(t *testing.T, resp *http.Response) {
				var v []int
				if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
					t.Fatal(err)
				}
				if len(v) != 10_000 {
					t.Fatalf("got %d elements, want 10000", len(v))
				}
			},
		},
		{
			name:  "tiny chunks SSE",
			srv:   func() *Server { return TinyChunks(9_000, 3) },
			query: "?offset=-1&live=sse",
			check: func(t *testing.T, resp *http.Response) {
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				s := string(b)
				if !strings.HasPrefix(s, "event: data\ndata: [\n") || strings.Count(s, "data: 0,\n") != 1000 ||
					!strings.Contains(s, "data: ]\n\nevent: control\n") {
					t.Fatalf("unexpected SSE body (%d bytes)", len(b))
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.srv()
			defer s.Close()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			tt.check(t, get(t, client(t), s.StreamURL("x")+tt.query))
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			// 8 to 32 MiB went through each big case; server and client
			// together allocate a few hundred KiB (the body is generated
			// from a small block, never held whole).
			if d := after.TotalAlloc - before.TotalAlloc; d > 4*mib {
				t.Errorf("allocated %d MiB while streaming", d/mib)
			}
			if s.Recorder().Total() != 1 {
				t.Errorf("recorded %d requests, want 1", s.Recorder().Total())
			}
		})
	}
}

func expectPrefix(t *testing.T, br *bufio.Reader, prefix string) {
	t.Helper()
	got := make([]byte, len(prefix))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != prefix {
		t.Fatalf("body starts %q (err %v), want %q", got, err, prefix)
	}
}

// TestHugeLineIsLazy asks for a 1 GiB line and reads only its start.
func TestHugeLineIsLazy(t *testing.T) {
	t.Parallel()
	s := HugeSSELine(1 << 30)
	defer s.Close()
	resp := get(t, client(t), s.StreamURL("x"))
	if n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); n != 1<<20 {
		t.Fatalf("read %d bytes", n)
	}
}

func TestOffsets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		srv  func() *Server
		ok   func(prev, next string) bool
	}{
		{"backwards", func() *Server { return OffsetBackwards(WithInterval(time.Millisecond)) }, func(p, n string) bool { return n < p }},
		{"repeat", func() *Server { return OffsetRepeat(WithInterval(time.Millisecond)) }, func(p, n string) bool { return n == p }},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/long-poll", func(t *testing.T) {
			t.Parallel()
			s := tt.srv()
			defer s.Close()
			c := client(t)
			prev := ""
			for i := range 5 {
				resp := get(t, c, s.StreamURL("x")+"?offset="+url.QueryEscape(prev)+"&live=long-poll")
				next := resp.Header.Get(protocol.HeaderNextOffset)
				body, _ := io.ReadAll(resp.Body)
				if string(body) != `[{"n":1}]` || resp.Header.Get(protocol.HeaderUpToDate) != "" {
					t.Fatalf("body %q, up-to-date %q", body, resp.Header.Get(protocol.HeaderUpToDate))
				}
				if i > 0 && !tt.ok(prev, next) {
					t.Fatalf("offset %q after %q", next, prev)
				}
				prev = next
			}
		})
		t.Run(tt.name+"/sse", func(t *testing.T) {
			t.Parallel()
			s := tt.srv()
			defer s.Close()
			resp := get(t, client(t), s.StreamURL("x")+"?offset=-1&live=sse")
			sc := bufio.NewScanner(resp.Body)
			prev, seen := "", 0
			for seen < 5 && sc.Scan() {
				line, ok := strings.CutPrefix(sc.Text(), "data: {")
				if !ok {
					continue
				}
				var ev struct{ StreamNextOffset string }
				if err := json.Unmarshal([]byte("{"+line), &ev); err != nil {
					t.Fatal(err)
				}
				if seen > 0 && !tt.ok(prev, ev.StreamNextOffset) {
					t.Fatalf("offset %q after %q", ev.StreamNextOffset, prev)
				}
				prev = ev.StreamNextOffset
				seen++
			}
			if seen < 5 {
				t.Fatalf("saw %d control events: %v", seen, sc.Err())
			}
		})
	}
}

func TestRedirectRecordsHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method string
		status int
	}{
		{http.MethodGet, http.StatusTemporaryRedirect},
		{http.MethodPost, http.StatusPermanentRedirect},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			s := Redirect(WithStatus(tt.status))
			defer s.Close()
			req, _ := http.NewRequest(tt.method, s.StreamURL("x")+"?offset=-1", strings.NewReader("data"))
			req.Header.Set("Authorization", "Bearer secret")
			req.Header.Set("X-Api-Key", "secret")
			resp, err := client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			tu, _ := url.Parse(s.Target().URL)
			if tu.Hostname() != "localhost" {
				t.Fatalf("target host %q, want another host name", tu.Hostname())
			}
			first, ok := s.Recorder().Last()
			if !ok || first.Header.Get("Authorization") == "" {
				t.Fatal("redirecting server did not record the request")
			}
			got, ok := s.Target().Recorder().Last()
			if !ok || got.Method != tt.method || got.URL != "/v1/stream/x?offset=-1" {
				t.Fatalf("target recorded %+v", got)
			}
			// net/http drops Authorization across hosts but forwards
			// custom headers: the recorder must show both facts.
			if s.Target().Recorder().HeaderSeen("Authorization") || !s.Target().Recorder().HeaderSeen("x-api-key") {
				t.Fatalf("target headers %v", got.Header)
			}
		})
	}
}

func TestRecorderBounded(t *testing.T) {
	t.Parallel()
	s := OffsetRepeat(WithHistory(3))
	defer s.Close()
	c := client(t)
	for i := range 10 {
		resp := get(t, c, s.URL+"/p?i="+string(rune('0'+i)))
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	rs := s.Recorder().Requests()
	if s.Recorder().Total() != 10 || len(rs) != 3 || rs[0].URL != "/p?i=7" || rs[2].URL != "/p?i=9" {
		t.Fatalf("total %d, retained %+v", s.Recorder().Total(), rs)
	}
}

func TestSlowloris(t *testing.T) {
	t.Parallel()
	const interval = 2 * time.Millisecond
	t.Run("body", func(t *testing.T) {
		t.Parallel()
		s := Slowloris(interval)
		defer s.Close()
		resp := get(t, client(t), s.StreamURL("x")) // headers arrive at once
		start := time.Now()
		var got []byte
		buf := make([]byte, 64)
		for len(got) < 20 {
			n, err := resp.Body.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Fatalf("a read returned %d bytes, want 1", n)
			}
			got = append(got, buf[:n]...)
		}
		if string(got) != `[{"n":0},{"n":0},{"n` {
			t.Fatalf("body %q", got)
		}
		if d := time.Since(start); d < 18*interval {
			t.Fatalf("20 bytes in %v: not dribbled", d)
		}
	})
	t.Run("headers too", func(t *testing.T) {
		t.Parallel()
		s := Slowloris(interval, WithSlowHeaders(), WithContentType("text/plain"))
		defer s.Close()
		nc, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_, _ = io.WriteString(nc, "GET /v1/stream/x?offset=-1 HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got []byte
		buf := make([]byte, 256)
		reads := 0
		for !bytes.HasSuffix(got, []byte("\r\n\r\naaa")) {
			n, err := nc.Read(buf)
			if err != nil {
				t.Fatalf("after %q: %v", got, err)
			}
			got = append(got, buf[:n]...)
			reads++
		}
		if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 OK\r\n")) || reads < len(got)/2 {
			t.Fatalf("%d bytes in %d reads: %q", len(got), reads, got)
		}
	})
}

// TestCloseMidStream closes servers whose handlers are streaming to a
// client that stopped reading or waiting on a long interval.
func TestCloseMidStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		srv   func() *Server
		query string
	}{
		{"endless body, client not reading", func() *Server { return EndlessBody() }, ""},
		{"huge line, client not reading", func() *Server { return HugeSSELine(1 << 30) }, ""},
		{"slowloris", func() *Server { return Slowloris(time.Hour) }, ""},
		{"slow headers", func() *Server { return Slowloris(time.Hour, WithSlowHeaders()) }, ""},
		{"offset SSE", func() *Server { return OffsetBackwards(WithInterval(time.Hour)) }, "?offset=-1&live=sse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.srv()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			errc := make(chan error, 1)
			go func() {
				resp, err := (&http.Client{Transport: tr}).Get(s.StreamURL("x") + tt.query)
				if err == nil {
					var b [1]byte
					_, err = resp.Body.Read(b[:]) // then stop reading
					resp.Body.Close()
				}
				errc <- err
			}()
			for s.Recorder().Total() == 0 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond) // let the handler get going
			start := time.Now()
			s.Close()
			if d := time.Since(start); d > time.Second {
				t.Errorf("Close took %v", d)
			}
			select {
			case <-errc:
			case <-time.After(5 * time.Second):
				t.Fatal("client still blocked after Close")
			}
		})
	}
}

func TestNonGETAnswers(t *testing.T) {
	t.Parallel()
	s := EndlessBody()
	defer s.Close()
	c := client(t)
	for _, m := range []string{http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete} {
		req, _ := http.NewRequest(m, s.StreamURL("x"), strings.NewReader("v"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 || resp.Header.Get(protocol.HeaderNextOffset) == "" {
			t.Errorf("%s: %s, next offset %q", m, resp.Status, resp.Header.Get(protocol.HeaderNextOffset))
		}
	}
}
