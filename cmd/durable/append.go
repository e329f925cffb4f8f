package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/durablego/durable"
)

func init() {
	register(command{name: "append", summary: "append messages from arguments or stdin", run: runAppend})
}

const appendHelp = `Appends to the stream. Each DATA argument is one message; with no DATA the
messages are read from stdin until its end.

On a JSON stream (--json, a JSON --content-type, or a stream whose content type
is JSON) each DATA argument, and each non-blank stdin line, must be one JSON
value and is stored as one message (an array stays one message). On other
streams the bytes are appended exactly as given, no newline added; stdin is
appended as it arrives (what one read of the pipe returns, at most
--max-batch-bytes, per request).

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
message was confirmed; 1 otherwise (also when interrupted).

` + connHelp

// appendFlags are the parsed flags of append.
type appendFlags struct {
	contentType   string
	json          bool
	producerID    string
	epoch         int64
	epochFile     string
	linger        time.Duration
	maxBatchBytes int
	maxInFlight   int
}

// defaultMaxBatchBytes bounds one append request body.
const defaultMaxBatchBytes = 1 << 20

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
	if f.contentType != "" && isJSONType(f.contentType) {
		for i, d := range data {
			if err := validJSONMessage([]byte(d)); err != nil {
				return usageErr(stderr, name, "DATA argument %d: %v", i+1, err)
			}
		}
	}
	cl, stream, err := conn.connect(pos[0], stderr, name)
	if err != nil {
		return err
	}
	ct, err := streamContentType(ctx, cl, stream, f.contentType)
	if err != nil {
		return err
	}
	isJSON := isJSONType(ct)
	if isJSON && f.contentType == "" { // learnt from the stream: check the arguments now
		for i, d := range data {
			if err := validJSONMessage([]byte(d)); err != nil {
				return usageErr(stderr, name, "DATA argument %d: %v (the stream is %s)", i+1, err, ct)
			}
		}
	}

	// The input, as batches of messages that are available now.
	in := make(chan inputBatch)
	done := make(chan struct{})
	defer close(done)
	switch {
	case len(data) > 0:
		go func() {
			defer close(in)
			msgs := make([][]byte, len(data))
			for i, d := range data {
				msgs[i] = []byte(d)
			}
			select {
			case in <- inputBatch{msgs: msgs, err: io.EOF}:
			case <-done:
			}
		}()
	case isJSON:
		go readJSONLines(stdin, f.maxBatchBytes, in, done)
	default:
		go readChunks(stdin, f.maxBatchBytes, in, done)
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
	inErr := pump(ctx, in, app)
	last, n, err := app.finish(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
		// Interrupted while an append was on its way: it may have landed.
		return fmt.Errorf("interrupted: %w", err)
	case err != nil:
		return err
	case inErr != nil:
		if last != "" {
			fmt.Fprintln(stdout, last)
		}
		return fmt.Errorf("%w (%d messages appended before)", inErr, n)
	case n == 0:
		fmt.Fprintln(stderr, "nothing to append")
		return nil
	}
	fmt.Fprintln(stdout, last)
	return nil
}

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
			return fmt.Errorf("interrupted: %w", ctx.Err())
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
	if p.err != nil {
		return p.last, p.n, fmt.Errorf("%w (%d messages confirmed before)", p.err, p.n)
	}
	return p.last, p.n, nil
}
