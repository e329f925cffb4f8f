package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/durablego/durable/subscription"
)

const subTailHelp = `Works the subscription as one of its workers: claims its lease when there is
work, reads each stream with pending messages from its acked offset, and prints
one JSON line per message on stdout (or appends it to --output FILE):

  {"stream":"orders/17","position":{"offset":"…","skip":0},"data":…}

data is the message itself when it is JSON, else its bytes as a string.
Several "durable sub tail" processes (on one machine or several) share a
subscription: the server hands the lease to one of them at a time, and another
takes over when the holder stops, is killed or stalls past its lease.

Delivery is at-least-once and in order per stream: each line is written (and
with --output fsynced) before its message is acked, so a tail killed between
the two prints it again, in this or another process. An acked message is never
printed again. SIGINT/SIGTERM acks what was printed, gives the lease back and
exits 0.

Only pull-wake subscriptions can be tailed (a webhook subscription delivers to
its URL).

` + connHelp

// subTailLine is one line of sub tail.
type subTailLine struct {
	Stream   string          `json:"stream"`
	Position subTailPosition `json:"position"`
	Data     json.RawMessage `json:"data"`
}

type subTailPosition struct {
	Offset string `json:"offset"`
	Skip   int64  `json:"skip"`
}

// lineSink writes batches of lines to stdout or an output file, one batch
// at a time (handlers of several streams may run at once).
type lineSink struct {
	mu   sync.Mutex
	w    io.Writer
	file *os.File // --output: fsynced after each batch
}

func (s *lineSink) write(batch []subscription.Message[[]byte]) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, m := range batch {
		line := subTailLine{Stream: m.Stream, Position: subTailPosition{Offset: m.Position.Offset, Skip: m.Position.Skip}, Data: lineData(m.Data)}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return err
	}
	if s.file != nil {
		return s.file.Sync()
	}
	return nil
}

// lineData is a message as a JSON value: itself when it is JSON, else its
// bytes as a string (invalid UTF-8 replaced).
func lineData(b []byte) json.RawMessage {
	if json.Valid(b) {
		var out bytes.Buffer
		if json.Compact(&out, b) == nil {
			return out.Bytes()
		}
	}
	if !utf8.Valid(b) {
		b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	}
	s, _ := json.Marshal(string(b))
	return s
}

func runSubTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const name = "sub tail"
	fs := newCommandFlags(name, "SUB [flags]", subTailHelp, stderr)
	var conn connFlags
	conn.register(fs)
	output := fs.String("output", "", "append the lines to this file, fsynced before each ack")
	worker := fs.String("name", "", "worker name the server shows as the lease holder (default: host-pid-random)")
	concurrency := fs.Int("concurrency", 1, "streams handled at once")
	ackEvery := fs.Duration("ack-interval", 200*time.Millisecond, "how long printed messages may wait before they are acked (0: at once)")
	poll := fs.Duration("poll", 5*time.Second, "how often to try to claim without a wake event")
	sub, cl, _, err := openSub(args, fs, &conn, stderr, name, 1)
	if err != nil {
		return err
	}
	if *concurrency < 1 || *ackEvery < 0 || *poll <= 0 {
		return usageErr(stderr, name, "--concurrency must be at least 1, --ack-interval not negative, --poll positive")
	}
	sink := &lineSink{w: stdout}
	if *output != "" {
		f, err := os.OpenFile(*output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		sink.w, sink.file = f, f
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	handle := func(_ context.Context, batch []subscription.Message[[]byte]) error {
		if err := sink.write(batch); err != nil {
			err = fmt.Errorf("write: %w", err)
			cancel(err) // output is gone: stop, nothing of this batch is acked
			return err
		}
		return nil
	}
	opts := []subscription.Option{subscription.WithConcurrency(*concurrency),
		subscription.WithAckInterval(*ackEvery), subscription.WithPollInterval(*poll)}
	if *worker != "" {
		opts = append(opts, subscription.WithName(*worker))
	}
	w, err := subscription.NewBatchWorker(cl, sub.ID(), handle, opts...)
	if err != nil {
		return usageErr(stderr, name, "%v", err)
	}
	err = w.Run(ctx)
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	st := w.Stats()
	fmt.Fprintf(stderr, "durable sub tail: %d messages, %d wakes, %d fenced\n", st.Handled, st.Wakes, st.Fenced)
	return err
}
