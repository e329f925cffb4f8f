package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/durablego/durable"
)

// benchmark times one operation. The payload is generated before the clock
// starts; the result carries the elapsed nanoseconds and what moved.
func (a *adapter) benchmark(ctx context.Context, cmd *command) result {
	op := cmd.Operation
	if op == nil {
		return errResult("benchmark", codeInvalidArgument, 0, "missing operation")
	}
	ctx, cancel := a.opContext(ctx)
	defer cancel()
	c, err := a.client(nil)
	if err != nil {
		return failure("benchmark", err, false)
	}
	u := a.streamURL(op.Path)
	payload := payloadFor("", op.Size)
	var m benchMetrics
	start := time.Now()
	switch op.Op {
	case "append":
		ct, cerr := a.contentType(ctx, c, op.Path)
		if cerr != nil {
			return failure("benchmark", cerr, false)
		}
		payload = payloadFor(ct, op.Size)
		start = time.Now()
		_, err = c.Append(ctx, u, payload, durable.AppendOptions{ContentType: ct})
		m.BytesTransferred = int64(len(payload))
	case "read":
		m.BytesTransferred, err = benchRead(ctx, c, u, durable.Offset(op.Offset))
	case "roundtrip":
		m.BytesTransferred, err = a.benchRoundtrip(ctx, c, op, payload)
	case "create":
		_, err = c.Create(ctx, u, durable.CreateOptions{ContentType: op.ContentType})
	case "throughput_append":
		m, err = a.benchThroughputAppend(ctx, c, op, payload)
	case "throughput_read":
		m, err = benchThroughputRead(ctx, c, u)
	default:
		return errResult("benchmark", codeNotSupported, 0, fmt.Sprintf("unknown benchmark operation %q", op.Op))
	}
	d := time.Since(start)
	if err != nil {
		return failure("benchmark", err, false)
	}
	if secs := d.Seconds(); secs > 0 {
		if m.MessagesProcessed > 0 {
			m.OpsPerSecond = float64(m.MessagesProcessed) / secs
		}
		if m.BytesTransferred > 0 {
			m.BytesPerSecond = float64(m.BytesTransferred) / secs
		}
	}
	return result{Type: "benchmark", Success: true, IterationID: cmd.IterationID, DurationNs: strconv.FormatInt(d.Nanoseconds(), 10), Metrics: &m}
}

// benchRead reads the stream from off until up to date.
func benchRead(ctx context.Context, c *durable.Client, u string, off durable.Offset) (int64, error) {
	var n int64
	for {
		ch, err := c.Read(ctx, u, durable.ReadOptions{Offset: off})
		if err != nil {
			return n, err
		}
		n += int64(len(ch.Data))
		off = ch.NextOffset
		if ch.UpToDate || ch.Closed {
			return n, nil
		}
	}
}

// benchRoundtrip creates the stream, starts a live Reader on it, appends
// the payload and waits until the Reader has delivered it.
func (a *adapter) benchRoundtrip(ctx context.Context, c *durable.Client, op *benchOperation, payload []byte) (int64, error) {
	u := a.streamURL(op.Path)
	ct := op.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	if _, err := c.Create(ctx, u, durable.CreateOptions{ContentType: ct}); err != nil {
		return 0, err
	}
	a.ctypes[op.Path] = ct
	payload = payloadFor(ct, len(payload))
	live := durable.LiveLongPoll
	if op.Live == string(durable.LiveSSE) {
		live = durable.LiveSSE
	}
	r, err := durable.NewReader(c, u, durable.BytesCodec{}, durable.WithLive(live), durable.WithManualCommit())
	if err != nil {
		return 0, err
	}
	defer r.Close(context.Background())
	type got struct {
		n   int
		err error
	}
	done := make(chan got, 1)
	go func() {
		n := 0
		for n < len(payload) {
			msg, err := r.Next(ctx)
			if err != nil {
				done <- got{n, err}
				return
			}
			n += len(msg.Data)
		}
		done <- got{n, nil}
	}()
	if _, err := c.Append(ctx, u, payload, durable.AppendOptions{ContentType: ct}); err != nil {
		r.Close(context.Background())
		<-done
		return 0, err
	}
	res := <-done
	return int64(len(payload) + res.n), res.err
}

// benchThroughputAppend writes count messages through a Writer.
func (a *adapter) benchThroughputAppend(ctx context.Context, c *durable.Client, op *benchOperation, payload []byte) (benchMetrics, error) {
	u := a.streamURL(op.Path)
	ct, err := a.contentType(ctx, c, op.Path)
	if errors.Is(err, durable.ErrNotFound) {
		ct = "application/octet-stream"
		if _, err = c.Create(ctx, u, durable.CreateOptions{ContentType: ct}); err == nil {
			a.ctypes[op.Path] = ct
		}
	}
	if err != nil {
		return benchMetrics{}, err
	}
	payload = payloadFor(ct, len(payload))
	opts := []durable.Option{durable.WithContentType(ct), durable.WithLinger(0), durable.WithRetry(writerRetry())}
	if op.Concurrency > 0 {
		opts = append(opts, durable.WithMaxInFlight(op.Concurrency))
	}
	w, err := durable.NewWriter(c, u, durable.BytesCodec{}, opts...)
	if err != nil {
		return benchMetrics{}, err
	}
	for i := 0; i < op.Count && err == nil; i++ {
		err = w.Write(ctx, payload)
	}
	if err == nil {
		err = w.Flush(ctx)
	}
	if cerr := w.Close(ctx); err == nil {
		err = cerr
	}
	return benchMetrics{BytesTransferred: int64(op.Count) * int64(len(payload)), MessagesProcessed: int64(op.Count)}, err
}

// benchThroughputRead reads and parses every JSON message of the stream.
func benchThroughputRead(ctx context.Context, c *durable.Client, u string) (benchMetrics, error) {
	r, err := durable.NewReader(c, u, durable.JSONCodec[json.RawMessage]{}, durable.WithLive(durable.LiveNone), durable.WithManualCommit())
	if err != nil {
		return benchMetrics{}, err
	}
	defer r.Close(context.Background())
	var m benchMetrics
	for {
		msg, err := r.Next(ctx)
		if err == io.EOF || errors.Is(err, durable.ErrCaughtUp) {
			return m, nil
		}
		if err != nil {
			return m, err
		}
		m.MessagesProcessed++
		m.BytesTransferred += int64(len(msg.Data))
	}
}

// payloadFor returns size bytes to append to a stream of content type ct:
// on a JSON stream one JSON string of that size (one message), otherwise
// plain bytes.
func payloadFor(ct string, size int) []byte {
	size = max(size, 0)
	if !isJSON(ct) {
		return bytes.Repeat([]byte{'x'}, size)
	}
	b := bytes.Repeat([]byte{'x'}, max(size, 2))
	b[0], b[len(b)-1] = '"', '"'
	return b
}
