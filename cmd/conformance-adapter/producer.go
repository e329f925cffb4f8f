package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/durablego/durable"
)

// writer is an open durable.Writer kept between commands, as the
// runner's idempotent-append, -close and -detach commands act on one
// producer (path, producer ID, epoch) over several commands.
type writer struct {
	w    *durable.Writer[[]byte]
	c    *durable.Client
	path string
}

func writerKey(path, id string, epoch int64) string {
	return path + "|" + id + "|" + strconv.FormatInt(epoch, 10)
}

// writerRetry is the Writer's default schedule (see durable.WithRetry),
// bounded to answer in time.
func writerRetry() durable.RetryPolicy {
	return durable.RetryPolicy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2,
		MaxElapsed: retryElapsed}
}

// newWriter opens a Writer on the stream with the stream's content type.
func (a *adapter) newWriter(ctx context.Context, cmd *command, extra ...durable.Option) (*writer, error) {
	c, err := a.client(cmd.Headers)
	if err != nil {
		return nil, err
	}
	ct, err := a.contentType(ctx, c, cmd.Path)
	if err != nil {
		return nil, err
	}
	opts := []durable.Option{
		durable.WithProducerID(cmd.ProducerID),
		durable.WithEpoch(cmd.Epoch),
		durable.WithContentType(ct),
		durable.WithRetry(writerRetry()),
	}
	if cmd.AutoClaim {
		opts = append(opts, durable.WithAutoClaim())
	}
	w, err := durable.NewWriter(c, a.streamURL(cmd.Path), durable.BytesCodec{}, append(opts, extra...)...)
	if err != nil {
		return nil, err
	}
	return &writer{w: w, c: c, path: cmd.Path}, nil
}

// cachedWriter returns the producer's open Writer, opening one (sending
// each write at once: one message, one request) if there is none.
func (a *adapter) cachedWriter(ctx context.Context, cmd *command) (*writer, error) {
	k := writerKey(cmd.Path, cmd.ProducerID, cmd.Epoch)
	if w, ok := a.writers[k]; ok {
		return w, nil
	}
	w, err := a.newWriter(ctx, cmd, durable.WithLinger(0), durable.WithMaxInFlight(1))
	if err != nil {
		return nil, err
	}
	a.writers[k] = w
	return w, nil
}

func (a *adapter) idempotentAppend(ctx context.Context, cmd *command) result {
	ctx, cancel := a.opContext(ctx)
	defer cancel()
	w, err := a.cachedWriter(ctx, cmd)
	if err != nil {
		return failure(cmd.Type, err, false)
	}
	var data []byte
	if cmd.Data != nil {
		data = []byte(*cmd.Data)
	}
	off, err := w.w.WriteSync(ctx, data)
	if err != nil {
		return failure(cmd.Type, err, false)
	}
	return result{Type: cmd.Type, Success: true, Status: http.StatusOK, Offset: string(off)}
}

// idempotentAppendBatch writes the items with a new Writer, flushes and
// detaches it. With maxInFlight > 1 every item is its own batch, so that
// several requests are in flight at once.
func (a *adapter) idempotentAppendBatch(ctx context.Context, cmd *command) result {
	ctx, cancel := a.opContext(ctx)
	defer cancel()
	inFlight := 1
	if cmd.MaxInFlight != nil {
		inFlight = *cmd.MaxInFlight
	}
	extra := []durable.Option{durable.WithMaxInFlight(inFlight)}
	if inFlight > 1 {
		extra = append(extra, durable.WithMaxBatch(1, 1<<20))
	}
	w, err := a.newWriter(ctx, cmd, extra...)
	if err != nil {
		return failure(cmd.Type, err, false)
	}
	for _, item := range cmd.Items {
		if err = w.w.Write(ctx, []byte(item)); err != nil {
			break
		}
	}
	if err == nil {
		err = w.w.Flush(ctx)
	}
	if cerr := w.w.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return failure(cmd.Type, err, false)
	}
	return result{Type: cmd.Type, Success: true, Status: http.StatusOK}
}

// idempotentClose closes the stream through the producer's Writer
// (Writer.CloseStream, with the final message if any). The Writer stays
// cached: closing again is answered by the same outcome.
func (a *adapter) idempotentClose(ctx context.Context, cmd *command) result {
	ctx, cancel := a.opContext(ctx)
	defer cancel()
	w, err := a.cachedWriter(ctx, cmd)
	if err != nil {
		return failure(cmd.Type, err, false)
	}
	var final [][]byte
	if cmd.Data != nil {
		final = append(final, []byte(*cmd.Data))
	}
	if err := w.w.CloseStream(ctx, final...); err != nil {
		return failure(cmd.Type, err, false)
	}
	r := result{Type: cmd.Type, Success: true, Status: http.StatusOK}
	if off, ok := w.w.LastAcked(); ok {
		r.FinalOffset = ptr(string(off))
	} else if info, err := w.c.Head(ctx, a.streamURL(cmd.Path)); err == nil {
		r.FinalOffset = ptr(string(info.NextOffset))
	}
	return r
}

// idempotentDetach stops the producer's Writer (Writer.Close) without
// closing the stream.
func (a *adapter) idempotentDetach(ctx context.Context, cmd *command) result {
	ctx, cancel := a.opContext(ctx)
	defer cancel()
	k := writerKey(cmd.Path, cmd.ProducerID, cmd.Epoch)
	w, ok := a.writers[k]
	if !ok {
		var err error
		if w, err = a.newWriter(ctx, cmd); err != nil {
			return failure(cmd.Type, err, false)
		}
	}
	delete(a.writers, k)
	if err := w.w.Close(ctx); err != nil {
		return failure(cmd.Type, err, false)
	}
	return result{Type: cmd.Type, Success: true, Status: http.StatusOK}
}

// validate checks options the way the SDK does before any request: a
// RetryPolicy (NewClient with WithRetry) or a Writer's options (NewWriter).
// Fields are applied one at a time, in protocol order, so that the
// first one the SDK rejects is named in the message.
func (a *adapter) validate(ctx context.Context, cmd *command) result {
	t := cmd.Target
	if t == nil {
		return errResult("validate", codeInvalidArgument, 0, "missing target")
	}
	var err error
	switch t.Target {
	case "retry-options":
		err = validateRetry(t)
	case "idempotent-producer":
		err = validateProducer(ctx, t)
	default:
		return errResult("validate", codeNotSupported, 0, fmt.Sprintf("unknown validation target %q", t.Target))
	}
	if err != nil {
		return errResult("validate", codeInvalidArgument, 0, err.Error())
	}
	return result{Type: "validate", Success: true}
}

func validateRetry(t *validateTarget) error {
	p := retryPolicy()
	p.MaxElapsed = 30 * time.Second
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	steps := []struct {
		name  string
		v     *float64
		apply func(float64) error
	}{
		{"maxRetries", t.MaxRetries, func(v float64) error {
			n, err := whole(v)
			if err != nil {
				return err
			}
			// n retries are n+1 attempts. MaxAttempts 0 means "no limit",
			// so a negative count stays negative rather than becoming it.
			p.MaxAttempts = n + 1
			if n < 0 {
				p.MaxAttempts = n
			}
			return nil
		}},
		{"initialDelayMs", t.InitialDelayMs, func(v float64) error { p.Initial = ms(v); return nil }},
		{"maxDelayMs", t.MaxDelayMs, func(v float64) error { p.Max = ms(v); return nil }},
		{"multiplier", t.Multiplier, func(v float64) error { p.Multiplier = v; return nil }},
	}
	for _, s := range steps {
		if s.v == nil {
			continue
		}
		if err := s.apply(*s.v); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		// NewClient validates its options and sends nothing.
		if _, err := durable.NewClient("http://127.0.0.1:1/", durable.WithRetry(p)); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func validateProducer(ctx context.Context, t *validateTarget) error {
	// NewWriter validates its options and sends nothing; the Client is
	// never used for a request.
	c, err := durable.NewClient("http://127.0.0.1:1/")
	if err != nil {
		return err
	}
	var opts []durable.Option
	try := func(name string, o durable.Option) error {
		opts = append(opts, o)
		w, err := durable.NewWriter(c, "validate", durable.BytesCodec{}, opts...)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return w.Close(cctx)
	}
	id := "validate-producer"
	if t.ProducerID != nil {
		id = *t.ProducerID
	}
	if err := try("producerId", durable.WithProducerID(id)); err != nil {
		return err
	}
	ints := []struct {
		name string
		v    *float64
		opt  func(int64) durable.Option
	}{
		{"epoch", t.Epoch, func(n int64) durable.Option { return durable.WithEpoch(n) }},
		{"maxBatchBytes", t.MaxBatchBytes, func(n int64) durable.Option { return durable.WithMaxBatch(1000, clampInt(n)) }},
		{"maxBatchItems", t.MaxBatchItems, func(n int64) durable.Option { return durable.WithMaxBatch(clampInt(n), 1<<20) }},
	}
	for _, s := range ints {
		if s.v == nil {
			continue
		}
		n, err := whole(*s.v)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if err := try(s.name, s.opt(int64(n))); err != nil {
			return err
		}
	}
	return nil
}

// whole converts a JSON number that must be an integer.
func whole(v float64) (int, error) {
	if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
		return 0, fmt.Errorf("%v is not an integer", v)
	}
	return int(v), nil
}

func clampInt(n int64) int {
	return int(max(min(n, math.MaxInt32), math.MinInt32))
}
