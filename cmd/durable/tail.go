package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
)

func init() {
	register(command{name: "tail", summary: "print a stream's messages, following it live; resumable", run: runTail})
}

const tailHelp = `Prints the stream's messages, one per line on stdout: each JSON message as one
line of NDJSON (compacted), the bytes of other streams as they are. It reads
what exists, then follows the stream live (--live) until the stream is closed
(exit 0 at its end) or tail is interrupted (SIGINT/SIGTERM: exit 0 after
saving its position; exit 1 with --until-eof, which promises the whole stream).
With --live none it stops, exit 0, once it has caught up.

--from says where to start when no position is saved: start (the default),
now (only messages appended from now on), or an offset printed by another
command (durable head, append or create). Offsets always contain a digit:
a word other than start or now is refused.

--offset-file F saves the position after the messages handled under --key
(default: the stream's path on its server, such as /v1/stream/orders, so the
same stream reached as localhost or 127.0.0.1 resumes alike), so a tail
started again with the same file resumes where the last one stopped; --from
then only applies to a key not yet saved. One offset file can hold many keys,
but is used by one process at a time: it is locked through a companion file
F.lock, which records the holder's process ID and host.

Delivery on stdout with --offset-file: at-least-once, and at most the last
line is repeated: each line is written, then its position saved (one fsync
per line; --output groups them), so a tail killed between the two prints that
line again when restarted. Without --offset-file nothing is saved.

--output FILE (needs --offset-file) writes to FILE instead, appending, and
keeps it in step with the offset file, exactly once: messages are written to
FILE, FILE is fsynced, and only then is the position saved together with
FILE's new length. A restart first truncates FILE to the saved length
(anything written after the last saved position is cut off and read again).
So a tail killed at any instant, even with SIGKILL, and restarted with the
same files yields each message in FILE exactly once. Positions are saved
after each group of messages that arrived together.

The stream is read with the SDK's Reader. Once tail has found the stream,
network errors, 408, 429 and 5xx (a server restarting, say) are retried with
backoff, forever unless --retry-for bounds it; stderr says when retries begin
and when messages flow again. If the server cannot be reached at the start,
or the stream is missing or deleted, or another permanent error occurs, tail
ends with exit 1.

A progress line is shown on stderr during a long catch-up, only when stderr
is a terminal.

` + connHelp

// tailFlags are the parsed flags of tail.
type tailFlags struct {
	from       string
	offsetFile string
	key        string
	live       string
	untilEOF   bool
	output     string
	retryFor   time.Duration
}

// errCaughtUp ends a --live none tail once it has read everything.
var errCaughtUp = errors.New("caught up")

// tailMsg is one message with the position after it.
type tailMsg struct {
	data     []byte // the message (a copy)
	pos      offsetstore.Position
	upToDate bool // no more data was available when it was read
	json     bool // a JSON message (else bytes of a byte stream)
}

// source yields messages in stream order; next fails with io.EOF at the end
// of a closed stream, errCaughtUp when caught up with live none.
type source interface {
	next(ctx context.Context) (tailMsg, error)
}

// Commit grouping (except per-line on stdout with an offset file): a commit
// after this many messages or bytes even when more are waiting.
const (
	commitEveryMessages = 1000
	commitEveryBytes    = 1 << 20
)

// liveModes maps --live values to the Reader's modes.
var liveModes = map[string]durable.LiveMode{
	"long-poll": durable.LiveLongPoll,
	"longpoll":  durable.LiveLongPoll,
	"sse":       durable.LiveSSE,
	"auto":      durable.LiveAuto,
	"none":      durable.LiveNone,
}

func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const name = "tail"
	fs := newCommandFlags(name, "STREAM [flags]", tailHelp, stderr)
	var conn connFlags
	conn.register(fs)
	var f tailFlags
	fs.StringVar(&f.from, "from", "start", "where to start when no position is saved: start, now or an offset")
	fs.StringVar(&f.offsetFile, "offset-file", "", "file that keeps the position, to resume after a restart")
	fs.StringVar(&f.key, "key", "", "key of the position in the offset file (default: the stream's path)")
	fs.StringVar(&f.live, "live", "long-poll", "how to wait for new messages: long-poll, sse, auto (SSE, falling back to long-poll) or none (stop when caught up)")
	fs.BoolVar(&f.untilEOF, "until-eof", false, "promise the whole stream: exit 0 only at the end of the closed stream (1 if interrupted)")
	fs.StringVar(&f.output, "output", "", "append messages to this file, exactly once with --offset-file (needs --offset-file)")
	fs.DurationVar(&f.retryFor, "retry-for", 0, "give up when reading has failed for this long (0 = retry forever)")
	arg, err := parseStream(fs, args, stderr, name)
	if err != nil {
		return err
	}
	from, err := parseFrom(f.from)
	if err != nil {
		return usageErr(stderr, name, "%v", err)
	}
	live, ok := liveModes[f.live]
	if !ok {
		return usageErr(stderr, name, "--live %q: want long-poll, sse, auto or none", f.live)
	}
	if f.untilEOF && live == durable.LiveNone {
		return usageErr(stderr, name, "--until-eof waits for the end of the stream: not with --live none")
	}
	if f.key != "" && f.offsetFile == "" {
		return usageErr(stderr, name, "--key needs --offset-file")
	}
	if f.output != "" && f.offsetFile == "" {
		return usageErr(stderr, name, "--output needs --offset-file (it is kept in step with it)")
	}
	if f.retryFor < 0 {
		return usageErr(stderr, name, "--retry-for must not be negative")
	}
	report := &retryReport{w: stderr, name: name, retryFor: f.retryFor}
	cl, stream, err := conn.connect(arg, stderr, name, durable.WithHooks(report))
	if err != nil {
		return err
	}
	t := &tail{name: name, flags: f, from: from, stream: stream, stderr: stderr, report: report}
	return t.run(ctx, cl, live, stdout)
}

// tail is one run of the tail command.
type tail struct {
	name   string
	flags  tailFlags
	from   durable.Offset
	stream string
	stderr io.Writer
	report *retryReport // the retry hook of the Client

	cp    *checkpoint
	start offsetstore.Position // where reading starts
	saved bool                 // start was loaded from the offset file
}

func (t *tail) run(ctx context.Context, cl *durable.Client, live durable.LiveMode, stdout io.Writer) error {
	f := t.flags
	t.cp = &checkpoint{key: f.key}
	if t.cp.key == "" {
		t.cp.key = streamKey(t.stream)
	}
	t.start = offsetstore.Position{Offset: string(t.from)}
	if f.offsetFile != "" {
		st, err := offsetstore.OpenFile(f.offsetFile)
		if err != nil {
			return err
		}
		defer st.Close()
		t.cp.store = st
		if err := t.load(ctx); err != nil {
			return err
		}
	}
	cp := t.cp
	if f.output != "" {
		cut, err := cp.openOutput(f.output, t.start, t.saved)
		if err != nil {
			return err
		}
		defer cp.close()
		if cut > 0 {
			fmt.Fprintf(t.stderr, "durable tail: cut %d bytes written to %s after the last saved position\n", cut, f.output)
		}
	} else {
		cp.w = bufio.NewWriterSize(stdout, 64<<10)
	}
	// The stream's content type says how messages are written out; a
	// missing stream fails here.
	info, err := cl.Head(ctx, t.stream)
	if err != nil {
		if ctx.Err() != nil { // interrupted before reading anything
			return t.outcome(ctx, ctx.Err())
		}
		return err
	}
	if !t.saved {
		// Pin "now" to a concrete offset and save the start, so a restart
		// before the first message resumes from here (and, with --output,
		// knows the file's length before this tail began). An offset given
		// with --from is saved only with --output: the server has not yet
		// said whether it takes it.
		if t.start.Offset == string(durable.OffsetNow) {
			t.start.Offset = string(info.NextOffset)
		}
		if t.from == durable.OffsetStart || t.from == durable.OffsetNow || f.output != "" {
			if err := cp.saveStart(ctx, t.start); err != nil {
				return err
			}
		} else {
			cp.pos = t.start
		}
	}

	so := sourceOptions{
		live:     live,
		retryFor: f.retryFor,
		key:      cp.key,
		start:    t.start,
		json:     isJSONType(info.ContentType),
	}
	if cp.store != nil {
		so.store = cp.store
	}
	src, err := openSource(cl, t.stream, so, t.report)
	if err != nil {
		return err
	}
	if cp.store != nil {
		cp.save = src.commit
	}
	// On stdout with an offset file every line is saved before the next is
	// written (at most the last line repeats); otherwise saves and flushes
	// are grouped.
	perLine := f.output == "" && cp.store != nil
	err = tailLoop(ctx, src, cp, perLine, newProgress(t.stderr))
	// Save what was written, even when interrupted.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	cerr := cp.commit(cctx)
	if xerr := src.close(); cerr == nil && xerr != nil && !errors.Is(xerr, durable.ErrClosed) {
		cerr = xerr
	}
	if cerr != nil {
		return fmt.Errorf("saving the position: %w (after: %v)", cerr, err)
	}
	return t.outcome(ctx, err)
}

// load loads the saved position. A position saved by an earlier release
// under the stream's full URL (the old default key) is moved to the key.
func (t *tail) load(ctx context.Context) error {
	st, key := t.cp.store, t.cp.key
	p, ok, err := st.Load(ctx, key)
	if err != nil {
		return err
	}
	if !ok && t.flags.key == "" && t.stream != key {
		if p, ok, err = st.Load(ctx, t.stream); err != nil {
			return err
		}
		if ok {
			if err := st.Save(ctx, key, p); err != nil {
				return err
			}
			fmt.Fprintf(t.stderr, "durable tail: position saved under %s now kept under key %s\n", redact(t.stream), key)
		}
	}
	if ok {
		t.start, t.saved = p, true
	}
	return nil
}

// outcome turns the end of the tail loop into the command's result.
func (t *tail) outcome(ctx context.Context, err error) error {
	cp := t.cp
	switch {
	case errors.Is(err, io.EOF):
		fmt.Fprintf(t.stderr, "durable tail: end of stream (closed) at offset %s\n", cp.pos.Offset)
		return nil
	case errors.Is(err, errCaughtUp):
		return nil
	case ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)):
		if !t.flags.untilEOF {
			return nil
		}
		if cp.store != nil {
			return fmt.Errorf("interrupted before the end of the stream; the position after the last message written is saved in %s (key %s): run the same command to go on", t.flags.offsetFile, cp.key)
		}
		return errors.New("interrupted before the end of the stream (nothing saved: give --offset-file to resume)")
	case errors.Is(err, durable.ErrBadRequest) && !t.saved && cp.written == 0 && t.from != durable.OffsetStart && t.from != durable.OffsetNow:
		// The server refused the offset given with --from.
		msg := fmt.Sprintf("--from %q: the server refuses this offset (%s); want start, now or an offset printed by durable head or append", t.flags.from, describe(err))
		if t.flags.output != "" {
			msg += fmt.Sprintf("; it was saved as the start under key %s in %s: use another --key", cp.key, t.flags.offsetFile)
		}
		return usageErr(t.stderr, t.name, "%s", msg)
	case err != nil && t.flags.retryFor > 0 && durable.IsRetryable(err):
		return fmt.Errorf("gave up after retrying for %v (--retry-for): %w", t.flags.retryFor, err)
	}
	return err
}

// streamKey is the default key of a stream's position in an offset file:
// its path on the server (escaped, as a URL has it), so that the same stream
// reached through another host name, address or port resumes from the same
// position. It is the Reader's default key (see durable.WithKey), which the
// SDK does not export.
func streamKey(stream string) string {
	u, err := url.Parse(stream)
	if err != nil || u.Path == "" {
		return stream
	}
	return u.EscapedPath()
}

// tailLoop copies messages from src to cp until src ends or fails or ctx is
// done. Messages are read by a goroutine so that the loop can tell whether
// more are waiting: it commits when none is (or after a bound), so the saved
// position never lags while the tail waits for new data. With perLine every
// message is committed on its own.
func tailLoop(ctx context.Context, src source, cp *checkpoint, perLine bool, prog *progress) error {
	rctx, cancel := context.WithCancel(ctx)
	type item struct {
		m   tailMsg
		err error
	}
	ch := make(chan item, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := src.next(rctx)
			select {
			case ch <- item{m, err}:
			case <-rctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-done
	}()

	// A save is not interrupted by a signal: it is short, and what was
	// written must be recorded.
	sctx := context.WithoutCancel(ctx)
	var buf []byte
	bytesSince := 0
	for {
		var it item
		select {
		case it = <-ch:
		default:
			// Nothing waiting: make what was written durable first.
			if err := cp.commit(sctx); err != nil {
				return err
			}
			bytesSince = 0
			select {
			case it = <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if it.err != nil {
			return it.err
		}
		var err error
		buf, err = frame(buf[:0], it.m, cp.pos)
		if err != nil {
			return err
		}
		if err := cp.write(buf, it.m.pos); err != nil {
			return err
		}
		bytesSince += len(buf)
		if perLine || cp.pending >= commitEveryMessages || bytesSince >= commitEveryBytes {
			if err := cp.commit(sctx); err != nil {
				return err
			}
			bytesSince = 0
		}
		prog.update(it.m, it.m.upToDate)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// frame appends the output form of one message to dst: a JSON message
// compacted onto one line, or the bytes of a byte stream unchanged.
// prev is the position before the message, for errors.
func frame(dst []byte, m tailMsg, prev offsetstore.Position) ([]byte, error) {
	if !m.json {
		return append(dst, m.data...), nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, m.data); err != nil {
		return nil, fmt.Errorf("message after position %s+%d is not valid JSON: %w", prev.Offset, prev.Skip, err)
	}
	dst = append(dst, b.Bytes()...)
	return append(dst, '\n'), nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress shows a progress line on a terminal during a long catch-up. A nil
// *progress shows nothing.
type progress struct {
	w       io.Writer
	start   time.Time // when the current catch-up began
	last    time.Time // when the line was last drawn
	n       int64     // messages in the current catch-up
	showing bool
}

// progressDelay is how long a catch-up runs before its progress is shown.
const progressDelay = 2 * time.Second

// newProgress returns a progress for w, or nil when w is not a terminal.
func newProgress(w io.Writer) *progress {
	if !isTerminal(w) {
		return nil
	}
	return &progress{w: w}
}

func (p *progress) update(m tailMsg, upToDate bool) {
	if p == nil {
		return
	}
	now := time.Now()
	if upToDate {
		p.clear()
		return
	}
	if p.n == 0 {
		p.start = now
	}
	p.n++
	if now.Sub(p.start) < progressDelay || now.Sub(p.last) < 250*time.Millisecond {
		return
	}
	p.last = now
	p.showing = true
	fmt.Fprintf(p.w, "\r\033[Kcatching up: %d messages, at offset %s", p.n, m.pos.Offset)
}

// clear removes the progress line and ends the current catch-up.
func (p *progress) clear() {
	if p == nil {
		return
	}
	if p.showing {
		fmt.Fprint(p.w, "\r\033[K")
		p.showing = false
	}
	p.n = 0
}
