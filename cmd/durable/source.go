package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
)

// readerSource reads a stream through the SDK's Reader: catch-up, then live
// reads (long-poll, SSE, or SSE falling back to long-poll), transient
// failures retried with the Reader's backoff. Positions are saved by the
// checkpoint through commit (the Reader runs with manual commits).
type readerSource struct {
	r    *durable.Reader[[]byte]
	json bool
	out  *retryReport
}

// sourceOptions say how a tail reads.
type sourceOptions struct {
	live     durable.LiveMode
	retryFor time.Duration        // 0: retry transient failures forever
	store    offsetstore.Store    // nil: save nothing
	key      string               // the position's key in store
	start    offsetstore.Position // where to start when store holds no position
	json     bool                 // the stream holds JSON messages
}

// openSource opens a Reader on stream. With a store the Reader starts from
// the position saved under key, if any, else from start.
func openSource(cl *durable.Client, stream string, o sourceOptions, report *retryReport) (*readerSource, error) {
	opts := []durable.Option{
		durable.WithLive(o.live),
		durable.WithManualCommit(),
	}
	if o.retryFor > 0 {
		// The Reader's default schedule (see durable.WithRetry), bounded.
		p := durable.RetryPolicy{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.2, MaxElapsed: o.retryFor}
		opts = append(opts, durable.WithRetry(p))
	}
	opts = append(opts, durable.WithStart(durable.Offset(o.start.Offset)))
	if o.store != nil {
		opts = append(opts, durable.WithStore(o.store), durable.WithKey(o.key))
	}
	r, err := durable.NewReader(cl, stream, durable.BytesCodec{}, opts...)
	if err != nil {
		return nil, err
	}
	return &readerSource{r: r, json: o.json, out: report}, nil
}

// next returns the next message. It fails with io.EOF at the end of a
// closed stream and errCaughtUp when caught up with live none.
func (s *readerSource) next(ctx context.Context) (tailMsg, error) {
	m, err := s.r.Next(ctx)
	switch {
	case errors.Is(err, durable.ErrCaughtUp):
		return tailMsg{}, errCaughtUp
	case err != nil:
		return tailMsg{}, err
	}
	// Value is a copy (BytesCodec): it outlives the next call of Next.
	return tailMsg{data: m.Value, pos: m.Position, upToDate: s.r.Stats().UpToDate, json: s.json}, nil
}

// commit saves pos (with its Meta) through the Reader.
func (s *readerSource) commit(ctx context.Context, pos offsetstore.Position) error {
	return s.r.Commit(ctx, pos)
}

func (s *readerSource) close() error {
	// Bounded: the final save of the position must not hang an exit.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.r.Close(ctx)
}

// retryReport tells the user on stderr that tail is riding out an outage:
// one line when it begins, a reminder at most once a minute while it lasts,
// and one line when messages flow again.
type retryReport struct {
	w        io.Writer
	name     string
	retryFor time.Duration

	mu       sync.Mutex
	failing  bool
	attempts int
	since    time.Time
	last     time.Time // last line printed
}

// reminderEvery bounds how often a long outage is reported.
const reminderEvery = time.Minute

// OnRetry is the Client's retry hook: it reports the Reader's retries
// (tail's other requests are reported by their errors).
func (r *retryReport) OnRetry(info durable.RetryEvent) {
	switch {
	case info.Op != "read":
		return
	case info.Recovered:
		r.recovered()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.attempts++
	if !r.failing {
		r.failing, r.since, r.last = true, now, now
		bound := "until it succeeds (--retry-for bounds this)"
		if r.retryFor > 0 {
			bound = fmt.Sprintf("for up to %v (--retry-for)", r.retryFor)
		}
		fmt.Fprintf(r.w, "durable %s: %s; retrying %s\n", r.name, describe(info.Err), bound)
		return
	}
	if now.Sub(r.last) >= reminderEvery {
		r.last = now
		fmt.Fprintf(r.w, "durable %s: still retrying after %v (%d attempts): %s\n", r.name, now.Sub(r.since).Round(time.Second), r.attempts, describe(info.Err))
	}
}

// recovered reports the end of an outage, if one was reported.
func (r *retryReport) recovered() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.failing {
		return
	}
	fmt.Fprintf(r.w, "durable %s: reading again after %v (%d retries)\n", r.name, time.Since(r.since).Round(time.Millisecond), r.attempts)
	r.failing, r.attempts = false, 0
}
