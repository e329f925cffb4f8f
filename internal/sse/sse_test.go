package sse

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// parseAll runs the parser to its first error.
func parseAll(r io.Reader, maxLine, maxEvent int) ([]Event, error) {
	p := NewParser(r, maxLine, maxEvent)
	var events []Event
	for {
		ev, err := p.Next()
		if err != nil {
			return events, err
		}
		events = append(events, ev)
	}
}

func TestParser(t *testing.T) {
	t.Parallel()
	msg := func(data string) Event { return Event{Type: "message", Data: data} }
	for _, tc := range []struct {
		name string
		in   string
		want []Event
		err  error
	}{
		{"empty", "", nil, io.EOF},
		{"one event LF", "data: hello\n\n", []Event{msg("hello")}, io.EOF},
		{"one event CRLF", "data: hello\r\n\r\n", []Event{msg("hello")}, io.EOF},
		{"one event CR", "data: hello\r\r", []Event{msg("hello")}, io.EOF},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", []Event{msg("a\nb\nc")}, io.EOF},
		{"multi data joined", "data: a\ndata: b\n\n", []Event{msg("a\nb")}, io.EOF},
		{"only one space removed", "data:  two\n\n", []Event{msg(" two")}, io.EOF},
		{"no space", "data:x\n\n", []Event{msg("x")}, io.EOF},
		{"field without colon", "data\n\n", []Event{msg("")}, io.EOF},
		{"two empty data lines", "data\ndata\n\n", []Event{msg("\n")}, io.EOF},
		{"colon in value", "data: a:b: c\n\n", []Event{msg("a:b: c")}, io.EOF},
		{"event type", "event: control\ndata: {}\n\n", []Event{{Type: "control", Data: "{}"}}, io.EOF},
		{"event type reset", "event: x\ndata: 1\n\ndata: 2\n\n", []Event{{Type: "x", Data: "1"}, msg("2")}, io.EOF},
		{"event without data not dispatched", "event: x\n\ndata: 2\n\n", []Event{msg("2")}, io.EOF},
		{"comments ignored", ": keepalive\n:\ndata: a\n: mid\n\n: tail\n", []Event{msg("a")}, io.EOF},
		{"id persists", "id: 7\ndata: a\n\ndata: b\n\n", []Event{{Type: "message", Data: "a", ID: "7"}, {Type: "message", Data: "b", ID: "7"}}, io.EOF},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []Event{{Type: "message", Data: "a", ID: "1"}, {Type: "message", Data: "b", ID: "1"}}, io.EOF},
		{"empty id resets", "id: 1\n\nid\ndata: b\n\n", []Event{msg("b")}, io.EOF},
		{"unknown field ignored", "foo: bar\ndata: a\n\n", []Event{msg("a")}, io.EOF},
		{"field names are case sensitive", "Data: a\nDATA: b\n\n", nil, io.EOF},
		{"retry", "retry: 1500\ndata: a\n\n", []Event{msg("a")}, io.EOF},
		{"BOM stripped", "\xef\xbb\xbfdata: a\n\n", []Event{msg("a")}, io.EOF},
		{"BOM only at start", "data: a\n\n\xef\xbb\xbfdata: b\n\n", []Event{msg("a")}, io.EOF},
		{"blank lines only", "\n\n\r\n\r", nil, io.EOF},
		{"incomplete event", "data: a\n\ndata: b\n", []Event{msg("a")}, io.ErrUnexpectedEOF},
		{"incomplete line", "data: a\n\ndata: b", []Event{msg("a")}, io.ErrUnexpectedEOF},
		{"incomplete comment line", ": ping", nil, io.ErrUnexpectedEOF},
		{"incomplete id only", "id: 3\n", nil, io.ErrUnexpectedEOF},
		{"binary bytes pass through", "data: \xff\xfe\x00\n\n", []Event{msg("\xff\xfe\x00")}, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, rd := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tc.in)},
				{"one byte", iotest.OneByteReader(strings.NewReader(tc.in))},
				{"half", iotest.HalfReader(strings.NewReader(tc.in))},
				{"data+EOF", iotest.DataErrReader(strings.NewReader(tc.in))},
			} {
				got, err := parseAll(rd.r, 1024, 1024)
				if !errors.Is(err, tc.err) || !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s reader: got %q, %v; want %q, %v", rd.name, got, err, tc.want, tc.err)
				}
				ref, refErr := refParse(tc.in, 1024, 1024)
				if !errors.Is(refErr, tc.err) || !reflect.DeepEqual(ref, tc.want) {
					t.Errorf("reference disagrees with the table: %q, %v", ref, refErr)
				}
			}
		})
	}
}

func TestParserRetryAndLastID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    string
		retry time.Duration
		ok    bool
	}{
		{"retry: 1500\n", 1500 * time.Millisecond, true},
		{"retry: 0\n", 0, true},
		{"retry: 1.5\n", 0, false},
		{"retry: -1\n", 0, false},
		{"retry:\n", 0, false},
		{"retry: 99999999999999999999999\n", 0, false},
		{"retry: 10\nretry: x\n", 10 * time.Millisecond, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p := NewParser(strings.NewReader(tc.in+"id: z\n\n"), 0, 0)
			if _, err := p.Next(); err != io.EOF {
				t.Fatalf("err = %v", err)
			}
			if d, ok := p.Retry(); d != tc.retry || ok != tc.ok {
				t.Fatalf("Retry() = %v, %v; want %v, %v", d, ok, tc.retry, tc.ok)
			}
			if id := p.LastEventID(); id != "z" {
				t.Fatalf("LastEventID() = %q", id)
			}
		})
	}
}

func TestParserLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		in                string
		maxLine, maxEvent int
		want              []Event
		err               error
	}{
		{"line at limit", "data: 1234\n\n", 10, 100, []Event{{Type: "message", Data: "1234"}}, io.EOF},
		{"line over limit", "data: 12345\n\n", 10, 100, nil, ErrLineTooLong},
		{"comment over limit", ": 123456789\n", 10, 100, nil, ErrLineTooLong},
		{"partial line over limit at EOF", "data: 12345", 10, 100, nil, ErrLineTooLong},
		{"CRLF not counted", "data: 1234\r\n\r\n", 10, 100, []Event{{Type: "message", Data: "1234"}}, io.EOF},
		{"event at limit", "data: 12345\ndata: 1234\n\n", 100, 10, []Event{{Type: "message", Data: "12345\n1234"}}, io.EOF},
		{"event over limit", "data: 12345\ndata: 12345\n\n", 100, 10, nil, ErrEventTooLarge},
		{"events after error not read", "data: a\n\ndata: 12345678901\n\ndata: b\n\n", 100, 10, []Event{{Type: "message", Data: "a"}}, ErrEventTooLarge},
		{"limit resets per event", "data: 1234567890\n\ndata: 1234567890\n\n", 100, 10, []Event{{Type: "message", Data: "1234567890"}, {Type: "message", Data: "1234567890"}}, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				got, err := parseAll(r, tc.maxLine, tc.maxEvent)
				if !errors.Is(err, tc.err) || !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
				}
			}
			ref, err := refParse(tc.in, tc.maxLine, tc.maxEvent)
			if !errors.Is(err, tc.err) || !reflect.DeepEqual(ref, tc.want) {
				t.Errorf("reference: got %q, %v", ref, err)
			}
		})
	}
}

func TestParserErrorsAreSticky(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		err  error
	}{
		{"EOF", "data: a\n\n", io.EOF},
		{"unexpected EOF", "data: a", io.ErrUnexpectedEOF},
		{"line too long", strings.Repeat("x", 100), ErrLineTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewParser(strings.NewReader(tc.in), 50, 50)
			var err error
			for range 5 {
				if _, err = p.Next(); err != nil {
					break
				}
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if _, err2 := p.Next(); err2 != err {
				t.Fatalf("second call: %v, want %v", err2, err)
			}
		})
	}
}

func TestParserReaderError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	got, err := parseAll(r, 0, 0)
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Fatalf("got %q, %v", got, err)
	}
	// A reader that makes no progress is an error, not a hang.
	if _, err := parseAll(zeroReader{}, 0, 0); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("zero reader: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

// TestParserDispatchesWithoutReadingAhead checks that an event is returned as
// soon as its blank line arrives, whatever the line ending, without waiting
// for more input (a live stream may send nothing more for a long time).
func TestParserDispatchesWithoutReadingAhead(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"\n\n", "\r\r", "\r\n\r\n"} {
		t.Run(fmt.Sprintf("%q", end), func(t *testing.T) {
			pr, pw := io.Pipe()
			p := NewParser(pr, 0, 0)
			go func() { _, _ = pw.Write([]byte("data: x" + end)) }()
			ev, err := p.Next()
			if err != nil || ev.Data != "x" {
				t.Fatalf("Next = %+v, %v", ev, err)
			}
			go func() { _, _ = pw.Write([]byte("\ndata: y" + end)) }()
			ev, err = p.Next()
			if err != nil || ev.Data != "y" {
				t.Fatalf("second Next = %+v, %v", ev, err)
			}
			pw.Close()
			if _, err := p.Next(); err != io.EOF {
				t.Fatalf("after close: %v", err)
			}
		})
	}
}

// genReader produces prefix followed by an endless (or n-byte) repetition of
// pattern, without allocating the bytes it yields.
type genReader struct {
	prefix  string
	pattern string
	n       int64 // total bytes to produce after prefix
	read    int64
	pos     int
}

func (g *genReader) Read(b []byte) (int, error) {
	if g.prefix != "" {
		n := copy(b, g.prefix)
		g.prefix = g.prefix[n:]
		return n, nil
	}
	if g.read >= g.n {
		return 0, io.EOF
	}
	if rem := g.n - g.read; int64(len(b)) > rem {
		b = b[:rem]
	}
	n := 0
	for n < len(b) {
		c := copy(b[n:], g.pattern[g.pos:])
		n += c
		g.pos = (g.pos + c) % len(g.pattern)
	}
	g.read += int64(n)
	return n, nil
}

func TestParserBoundedMemory(t *testing.T) {
	const gib = 1 << 30
	line := strings.Repeat("x", 999) + "\n"
	for _, tc := range []struct {
		name              string
		gen               *genReader
		maxLine, maxEvent int
		err               error
	}{
		{"1 GiB line", &genReader{prefix: "data: ", pattern: "a", n: gib}, 64 << 10, 1 << 20, ErrLineTooLong},
		{"1 GiB line of CR-free bytes, big limit", &genReader{prefix: "data: ", pattern: "ab", n: gib}, 4 << 20, 8 << 20, ErrLineTooLong},
		{"1 GiB comment", &genReader{prefix: ":", pattern: "z", n: gib}, 1 << 20, 1 << 20, ErrLineTooLong},
		{"1 GiB event", &genReader{pattern: "data: " + line, n: gib}, 64 << 10, 1 << 20, ErrEventTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := parseAll(tc.gen, tc.maxLine, tc.maxEvent)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			limit := int64(max(tc.maxLine, tc.maxEvent))
			if tc.gen.read > 2*limit+maxBufSize {
				t.Errorf("read %d bytes before failing; limit %d", tc.gen.read, limit)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(4*limit+maxBufSize+1<<20) {
				t.Errorf("allocated %d bytes; limit %d", alloc, limit)
			}
			t.Logf("failed after reading %d bytes in %v", tc.gen.read, time.Since(start))
		})
	}
}

// TestParserMatchesReference compares the parser with refParse on random
// inputs built from SSE-significant tokens, read in random chunk sizes.
func TestParserMatchesReference(t *testing.T) {
	t.Parallel()
	tokens := []string{"data", "event", "id", "retry", ":", ": ", " ", "x", "yz", "\n", "\r", "\r\n", "\n\n", "\x00", "\xef\xbb\xbf", "data: ", "0", "é"}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 20000 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(tokens[rng.IntN(len(tokens))])
		}
		in := b.String()
		maxLine, maxEvent := 1+rng.IntN(20), 1+rng.IntN(30)
		if rng.IntN(2) == 0 {
			maxLine, maxEvent = 1<<20, 1<<20
		}
		got, err := parseAll(&chunkReader{s: in, rng: rng}, maxLine, maxEvent)
		want, wantErr := refParse(in, maxLine, maxEvent)
		if err != wantErr || !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: input %q limits %d/%d:\nparser    %q, %v\nreference %q, %v", i, in, maxLine, maxEvent, got, err, want, wantErr)
		}
	}
}

// chunkReader returns its string in random-sized pieces.
type chunkReader struct {
	s   string
	rng *rand.Rand
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := min(len(b), len(c.s), 1+c.rng.IntN(8))
	copy(b, c.s[:n])
	c.s = c.s[n:]
	return n, nil
}
