package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/durablego/durable"
)

func init() {
	register(command{name: "append", summary: "append messages from arguments or stdin", run: runAppend})
}

const appendHelp = `Appends to the stream. Each DATA argument is one message; with no DATA the
messages are read from stdin.

On a JSON stream (--json, a JSON --content-type, or a stream whose content type
is JSON) each DATA argument, and each non-blank stdin line, must be one JSON
value and is stored as one message (an array stays one message). On other
streams the bytes are appended exactly as given, no newline added.

Nothing is half-applied by a bad input: by default append reads all of stdin
(at most --max-input bytes) and checks every line before it sends anything,
so a line that is not one JSON value fails the command (exit 2) with its line
number and nothing appended; fix the input and run it again. Past
--max-input it fails the same way, sending nothing.

--stream sends stdin as it arrives instead, for a pipe that stays open (a
JSON line as soon as it is complete; the bytes of other streams as each read
of the pipe returns them, at most --max-batch-bytes per request). A bad line
then stops append (exit 2) after the lines before it were appended; the error
says how many landed and from which line to send the input again.

The content type sent is --content-type, else application/json with --json,
else the stream's own (learnt with one HEAD request).

Without --producer-id every request is a plain append, sent one after the
other. A plain append whose fate is unknown (the connection failed after the
request left) is not retried, since that could store it twice: the command
fails (exit 1) and says how many messages were confirmed before.

With --producer-id the messages go through an idempotent producer: batched
(--linger, --max-batch-bytes, --max-in-flight), retried on network errors,
429 and 5xx without ever being stored twice (the server drops duplicates of
the same producer, epoch and sequence number). Each run claims a new epoch,
which fences any earlier process with the same producer ID: the current Unix
time in milliseconds, or --epoch N. With --epoch-file the epoch is also at
least the one saved there by the last run plus one (so it grows even if the
clock goes back), and is saved before the first append.

Prints the stream's offset after the last append on stdout. Exit 0 when every
message was confirmed; 2 for a bad input (as for a bad command line); 1
otherwise (also when interrupted).

` + connHelp

// appendFlags are the parsed flags of append.
type appendFlags struct {
	contentType   string
	json          bool
	stream        bool
	maxInput      int
	producerID    string
	epoch         int64
	epochFile     string
	linger        time.Duration
	maxBatchBytes int
	maxInFlight   int
}

// Default bounds of append.
const (
	defaultMaxBatchBytes = 1 << 20  // one append request body
	defaultMaxInput      = 64 << 20 // stdin read whole before sending
)

// slowInputNotice is how long append reads stdin before it says that it
// waits for the end of the input.
const slowInputNotice = 2 * time.Second

func runAppend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return appendTo(ctx, args, os.Stdin, stdout, stderr)
}

func appendTo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	const name = "append"
	fs := newCommandFlags(name, "STREAM [DATA...] [flags]", appendHelp, stderr)
	var conn connFlags
	conn.register(fs)
	var f appendFlags
	fs.StringVar(&f.contentType, "content-type", "", "content type of the data (default: the stream's)")
	fs.BoolVar(&f.json, "json", false, "JSON messages: each DATA / stdin line is one JSON value")
	fs.BoolVar(&f.stream, "stream", false, "send stdin as it arrives instead of checking all of it first")
	fs.IntVar(&f.maxInput, "max-input", defaultMaxInput, "largest stdin in bytes read whole before sending (not with --stream)")
	fs.StringVar(&f.producerID, "producer-id", "", "append through an idempotent producer with this ID (safe retries, batching)")
	fs.Int64Var(&f.epoch, "epoch", -1, "producer epoch (default: current Unix time in ms; needs --producer-id)")
	fs.StringVar(&f.epochFile, "epoch-file", "", "file keeping the producer's last epoch; each run claims the next (needs --producer-id)")
	fs.DurationVar(&f.linger, "linger", 5*time.Millisecond, "how long a producer batch waits for more messages (needs --producer-id)")
	fs.IntVar(&f.maxBatchBytes, "max-batch-bytes", defaultMaxBatchBytes, "largest request body in bytes")
	fs.IntVar(&f.maxInFlight, "max-in-flight", 4, "producer batches sent concurrently (needs --producer-id)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return usageErr(stderr, name, "missing STREAM")
	}
	if f.producerID == "" {
		for _, n := range []string{"epoch", "epoch-file", "linger", "max-in-flight"} {
			if flagGiven(fs, n) {
				return usageErr(stderr, name, "--%s needs --producer-id", n)
			}
		}
	}
	if flagGiven(fs, "epoch") && f.epochFile != "" {
		return usageErr(stderr, name, "--epoch and --epoch-file are mutually exclusive")
	}
	if f.epoch < -1 || f.epoch > 1<<53-1 {
		return usageErr(stderr, name, "--epoch must be in [0, 2^53-1]")
	}
	if f.maxBatchBytes <= 0 {
		return usageErr(stderr, name, "--max-batch-bytes must be positive")
	}
	if f.maxInput <= 0 {
		return usageErr(stderr, name, "--max-input must be positive")
	}
	if f.maxInFlight <= 0 {
		return usageErr(stderr, name, "--max-in-flight must be positive")
	}
	if f.linger < 0 {
		return usageErr(stderr, name, "--linger must not be negative")
	}
	if f.json && f.contentType != "" && !isJSONType(f.contentType) {
		return usageErr(stderr, name, "--json and --content-type %q disagree", f.contentType)
	}
	if f.json && f.contentType == "" {
		f.contentType = jsonType
	}
	data := pos[1:]
	if len(data) > 0 && (f.stream || flagGiven(fs, "max-input")) {
		return usageErr(stderr, name, "--stream and --max-input are about stdin: not with DATA arguments")
	}
	if f.stream && flagGiven(fs, "max-input") {
		return usageErr(stderr, name, "--max-input bounds the input read whole: not with --stream")
	}
	if isJSONType(f.contentType) {
		if err := checkJSONArgs(data); err != nil {
			return err
		}
	}
	cl, stream, err := conn.connect(pos[0], stderr, name)
	if err != nil {
		return err
	}
	ct, err := streamContentType(ctx, cl, stream, f.contentType)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted: nothing was appended")
		}
		return err
	}
	isJSON := isJSONType(ct)
	if isJSON && f.contentType == "" { // learnt from the stream: check the arguments now
		if err := checkJSONArgs(data); err != nil {
			return err
		}
	}

	// The messages: the arguments, or all of stdin read and checked first
	// (nil with --stream: stdin is read while sending).
	var msgs [][]byte
	switch {
	case len(data) > 0:
		msgs = make([][]byte, len(data))
		for i, d := range data {
			msgs[i] = []byte(d)
		}
	case !f.stream:
		msgs, err = readWhole(ctx, stdin, isJSON, f, stderr)
		if err != nil {
			return err
		}
	}

	var app appender
	if f.producerID != "" {
		app, err = newProducerAppender(cl, stream, ct, f)
		if err != nil {
			return err
		}
	} else {
		app = &plainAppender{cl: cl, stream: stream, ct: ct, json: isJSON, maxBytes: f.maxBatchBytes}
	}
	var inErr error
	if f.stream && len(data) == 0 {
		in := make(chan inputBatch)
		done := make(chan struct{})
		defer close(done)
		if isJSON {
			go readJSONLines(stdin, f.maxBatchBytes, in, done)
		} else {
			go readChunks(stdin, f.maxBatchBytes, in, done)
		}
		inErr = pump(ctx, in, app)
	} else if len(msgs) > 0 {
		inErr = app.append(ctx, msgs)
		if ctx.Err() != nil && inErr != nil {
			inErr = fmt.Errorf("interrupted: %w", inErr)
		}
	}
	last, n, err := app.finish(ctx)
	var le *lineError
	switch {
	case err != nil && f.producerID != "":
		// The producer's error says what landed (its offset, not a count).
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		return err
	case err != nil && ctx.Err() != nil:
		// Interrupted while an append was on its way: it may have landed.
		return fmt.Errorf("interrupted: %w (%s)", err, confirmed(n))
	case err != nil:
		return fmt.Errorf("%w (%s)", err, confirmed(n))
	case errors.As(inErr, &le):
		if last != "" {
			fmt.Fprintln(stdout, last)
		}
		format := "one JSON value per line"
		if !errors.Is(inErr, errNotJSON) {
			format = "lines of at most --max-batch-bytes"
		}
		return &badInput{fmt.Errorf("%w; append takes %s. The lines before it were appended (%s): fix line %d, then send the input again from it (for example: tail -n +%d FILE | durable append STREAM --stream)", inErr, format, messages(n), le.line, le.line)}
	case inErr != nil:
		if last != "" {
			fmt.Fprintln(stdout, last)
		}
		return fmt.Errorf("%w (%s appended before)", inErr, messages(n))
	case n == 0:
		fmt.Fprintln(stderr, "nothing to append")
		return nil
	}
	fmt.Fprintln(stdout, last)
	return nil
}

// messages is "1 message" or "n messages".
func messages(n int) string {
	if n == 1 {
		return "1 message"
	}
	return fmt.Sprintf("%d messages", n)
}

// confirmed says how many messages were confirmed before a failure.
func confirmed(n int) string {
	if n == 0 {
		return "nothing was appended"
	}
	return messages(n) + " confirmed before"
}

// checkJSONArgs checks that every DATA argument is one JSON value.
func checkJSONArgs(data []string) error {
	for i, d := range data {
		if err := validJSONMessage([]byte(d)); err != nil {
			return &badInput{fmt.Errorf("DATA argument %d %w; a JSON stream takes one JSON value per argument%s. Nothing was appended", i+1, err, textHint(d))}
		}
	}
	return nil
}

// textHint shows how to send a DATA argument that looks like plain text as a
// JSON string, quoted for a shell: ` (text is a JSON string: '"hello"')`.
func textHint(d string) string {
	t := strings.TrimSpace(d)
	if t == "" || strings.ContainsAny(t[:1], `{["`) || strings.Contains(d, "'") {
		return ""
	}
	q, err := json.Marshal(d)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (text is a JSON string: '%s')", q)
}

// badInput is an input append refuses (a DATA argument or stdin line that
// is not one JSON value, a line too long, stdin too large): exit 2 like a
// usage error, wherever the input came from.
type badInput struct{ err error }

func (e *badInput) Error() string { return e.err.Error() }
func (e *badInput) Unwrap() error { return e.err }

// readWhole reads all of stdin (at most f.maxInput bytes) and splits it into
// messages, checking each JSON line, before anything is sent. It says on
// stderr when stdin stays open for long: append sends only at its end.
func readWhole(ctx context.Context, stdin io.Reader, isJSON bool, f appendFlags, stderr io.Writer) ([][]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(stdin, int64(f.maxInput)+1))
		got <- result{b, err}
	}()
	notice := time.NewTimer(slowInputNotice)
	defer notice.Stop()
	var r result
	for done := false; !done; {
		select {
		case r = <-got:
			done = true
		case <-notice.C:
			fmt.Fprintln(stderr, "durable append: reading stdin to its end before sending anything (--stream sends it as it arrives)")
		case <-ctx.Done():
			return nil, errors.New("interrupted while reading stdin: nothing was appended")
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("reading stdin: %w; nothing was appended", r.err)
	}
	if len(r.b) > f.maxInput {
		return nil, &badInput{fmt.Errorf("stdin holds more than %d bytes (--max-input); nothing was appended: raise --max-input, or use --stream to send it as it is read", f.maxInput)}
	}
	in := make(chan inputBatch)
	done := make(chan struct{})
	defer close(done)
	if isJSON {
		go readJSONLines(bytes.NewReader(r.b), f.maxBatchBytes, in, done)
	} else {
		go readChunks(bytes.NewReader(r.b), f.maxBatchBytes, in, done)
	}
	var msgs [][]byte
	for b := range in {
		msgs = append(msgs, b.msgs...)
		if b.err != nil && !errors.Is(b.err, io.EOF) {
			if errors.Is(b.err, errNotJSON) {
				return nil, &badInput{fmt.Errorf("%w; a JSON stream takes one JSON value per line. Nothing was appended", b.err)}
			}
			return nil, &badInput{fmt.Errorf("%w; nothing was appended", b.err)}
		}
	}
	return msgs, nil
}

// errInterrupted: append was interrupted between appends (Ctrl-C while
// waiting for input), said without Go's "context canceled".
var errInterrupted = errors.New("interrupted")

// pump feeds input batches to app until the input ends, app fails or ctx is
// done. It returns the input's error (nil at its clean end) or app's or
// ctx's.
func pump(ctx context.Context, in <-chan inputBatch, app appender) error {
	for {
		var b inputBatch
		var ok bool
		select {
		case b, ok = <-in:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return errInterrupted
		}
		if len(b.msgs) > 0 {
			if err := app.append(ctx, b.msgs); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("interrupted: %w", err)
				}
				return err
			}
		}
		if b.err != nil {
			if errors.Is(b.err, io.EOF) {
				return nil
			}
			return b.err
		}
	}
}

// appender sends messages to the stream.
type appender interface {
	// append sends (or enqueues) msgs in order.
	append(ctx context.Context, msgs [][]byte) error
	// finish waits for everything sent and returns the stream's offset after
	// the last confirmed append, how many messages were confirmed, and the
	// first error of any message that was not.
	finish(ctx context.Context) (durable.Offset, int, error)
}

// plainAppender appends without producer headers: one request at a time,
// never retried once it may have reached the server.
type plainAppender struct {
	cl       *durable.Client
	stream   string
	ct       string
	json     bool
	maxBytes int

	last durable.Offset
	n    int
	err  error
}

func (p *plainAppender) append(ctx context.Context, msgs [][]byte) error {
	if p.err != nil {
		return p.err
	}
	for len(msgs) > 0 {
		// Take as many messages as fit in one request (at least one).
		k, size := 1, len(msgs[0])+2
		for k < len(msgs) && size+len(msgs[k])+1 <= p.maxBytes {
			size += len(msgs[k]) + 1
			k++
		}
		var body []byte
		if p.json {
			b, err := jsonBatch(msgs[:k])
			if err != nil {
				p.err = err
				return err
			}
			body = b
		} else {
			for _, m := range msgs[:k] {
				body = append(body, m...)
			}
		}
		res, err := p.cl.Append(ctx, p.stream, body, durable.AppendOptions{ContentType: p.ct})
		if err != nil {
			p.err = err
			return err
		}
		p.last = res.NextOffset
		p.n += k
		msgs = msgs[k:]
	}
	return nil
}

func (p *plainAppender) finish(context.Context) (durable.Offset, int, error) {
	return p.last, p.n, p.err
}
