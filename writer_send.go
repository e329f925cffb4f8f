package durable

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptrace"
	"time"

	"github.com/durablego/durable/internal/protocol"
	"github.com/durablego/durable/internal/retry"
)

// Sending a sealed batch: one sender goroutine per batch in flight, the
// retry loop around its attempts, and the producer epoch.

// send delivers one batch and settles it.
func (p *pipeline) send(b *wbatch) {
	defer p.wg.Done()
	start := time.Now()
	size := len(b.body)
	ctx := p.ctx
	if hs := &p.c.cfg.hooks; len(hs.starts) > 0 {
		p.hookMu.Lock()
		p.mu.Lock()
		epoch, bufMsgs, bufBytes := p.epoch, p.bufMsgs, p.bufBytes
		p.mu.Unlock()
		ctx = hs.start(ctx, StartEvent{Op: "write", Stream: streamOf(p.url), Producer: Producer{ID: p.pid, Epoch: epoch, Seq: b.seq},
			Messages: b.n, Bytes: size, Buffered: bufMsgs, BufferedBytes: bufBytes})
		p.hookMu.Unlock()
	}
	attempts, err := p.deliver(ctx, b)
	p.mu.Lock()
	p.inflight--
	p.settleLocked(b, err)
	p.dispatchLocked(time.Now())
	p.mu.Unlock()
	close(b.done)
	if err != nil {
		p.logLost(b, err)
	}
	if hs := &p.c.cfg.hooks; len(hs.batch) > 0 {
		p.hookMu.Lock()
		p.mu.Lock()
		epoch, bufMsgs, bufBytes := p.epoch, p.bufMsgs, p.bufBytes
		p.mu.Unlock()
		hs.onBatch(BatchEvent{Context: ctx, Attempts: attempts, Stream: streamOf(p.url), Offset: b.off,
			Producer: Producer{ID: p.pid, Epoch: epoch, Seq: b.seq}, Messages: b.n, Bytes: size, Latency: time.Since(start), Err: err,
			Buffered: bufMsgs, BufferedBytes: bufBytes})
		p.hookMu.Unlock()
	}
}

// logLost logs a lost batch at Error: a fenced Writer says so.
func (p *pipeline) logLost(b *wbatch, err error) {
	var e *Error
	if errors.Is(err, ErrStaleEpoch) && errors.As(err, &e) {
		p.c.log.Error("durable: writer fenced by a newer producer epoch; its batch is lost", "url", redactURL(p.url),
			"producer", p.pid, "server_epoch", e.ServerEpoch, "seq", b.seq, "messages", b.n, "error", err)
		return
	}
	p.c.log.Error("durable: writer lost a batch", "url", redactURL(p.url), "producer", p.pid,
		"seq", b.seq, "messages", b.n, "error", err)
}

// deliver sends b until it lands or cannot, with ctx (the Writer's, or the
// one a start hook gave the batch): the retry loop (retry.Do with the
// Writer's policy) around sendBatch. It returns the number of requests
// sent.
func (p *pipeline) deliver(ctx context.Context, b *wbatch) (int, error) {
	if err := p.ensureEpoch(ctx); err != nil {
		return 0, p.abortedOr(err)
	}
	if prev := b.prev; prev != nil {
		// Start only once the previous batch's request has been sent: it
		// then almost always reaches the server first, and pipelining
		// rarely costs a sequence-gap resend.
		select {
		case <-prev.written:
		case <-prev.done:
		case <-ctx.Done():
			return 0, p.abortedOr(ctx.Err())
		}
	}
	actx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				b.markWritten()
			}
		},
	})
	st := &batchSend{b: b, prev: b.prev, ct: p.ct}
	if len(b.body) == 0 {
		st.ct = "" // close-only
	}
	classify := func(err error) (bool, time.Duration) {
		if st.final {
			return false, 0
		}
		ok, floor := retry.Classify(failureOf(err, true))
		if ok {
			st.mayHaveLanded = true
		}
		return ok, floor
	}
	logRetry := p.c.retryLogger(ctx, "write", p.url)
	err := retry.Do(actx, retry.NewSchedule(p.cfg.retry.internal()), func(ctx context.Context) error {
		return p.sendBatch(ctx, st)
	}, classify, logRetry)
	if err != nil && ctx.Err() != nil {
		return st.requests, p.abortedOr(err)
	}
	return st.requests, err
}

// batchSend is the state of one batch's delivery across attempts.
type batchSend struct {
	b             *wbatch
	prev          *wbatch
	ct            string
	mayHaveLanded bool // an attempt may have been applied without our knowing
	claimed       bool // the producer ID was claimed with a new epoch (WithAutoClaim)
	final         bool // the error returned is final: no retry
	requests      int  // requests sent
}

// sendBatch makes one attempt of a batch, sending it again at once (not a
// retry: no wait) when the protocol says so: after a sequence gap, once the
// batch it overtook has landed, and after claiming the producer ID.
func (p *pipeline) sendBatch(ctx context.Context, st *batchSend) error {
	b, prev := st.b, st.prev
	for {
		p.mu.Lock()
		epoch := p.epoch
		p.mu.Unlock()
		prevSettled := prev == nil || isClosed(prev.done)
		st.requests++
		res, err := p.attempt(ctx, b, epoch, st.ct)
		if err == nil {
			if res.Duplicate && !st.mayHaveLanded && len(b.body) > 0 {
				st.final = true
				return &Error{Op: "write", URL: redactURL(p.url), Err: fmt.Errorf("%w (epoch %d, seq %d)", ErrProducerReused, epoch, b.seq)}
			}
			b.off = res.NextOffset
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		var e *Error
		errors.As(err, &e)
		switch {
		case errors.Is(err, ErrProducerSeqGap) && !prevSettled:
			b.gapped = true
			// Overtook an earlier batch: resend once it has landed.
			select {
			case <-prev.done:
			case <-ctx.Done():
				return err
			}
			if prev.err != nil {
				st.final = true
				return prev.err
			}
		case errors.Is(err, ErrStaleEpoch) && e != nil && p.cfg.autoClaim && b.seq == 0 && !st.mayHaveLanded && !st.claimed:
			st.claimed = true
			if err := p.claim(ctx, e.ServerEpoch+1); err != nil {
				st.final = true
				return err
			}
		case errors.Is(err, ErrStreamClosed) && b.close && len(b.body) == 0:
			// Close-only on a closed stream: closed is what was asked.
			b.off = e.NextOffset
			return nil
		default:
			return err
		}
	}
}

// claim takes the producer ID over with epoch next (WithAutoClaim), saving
// it to the epoch store first, if any.
func (p *pipeline) claim(ctx context.Context, next int64) error {
	if next > protocol.MaxProducerNumber {
		return &Error{Op: "write", URL: redactURL(p.url), Err: fmt.Errorf("%w: producer epoch exhausted", ErrStaleEpoch)}
	}
	if s := p.cfg.epochStore; s != nil {
		if err := s.SaveEpoch(ctx, p.pid, next); err != nil {
			return &Error{Op: "write", URL: redactURL(p.url), Err: fmt.Errorf("save producer epoch: %w", err)}
		}
	}
	p.mu.Lock()
	p.epoch = next
	p.mu.Unlock()
	return nil
}

// attempt sends one request of b, bounded by the Client's WithRequestTimeout.
func (p *pipeline) attempt(ctx context.Context, b *wbatch, epoch int64, ct string) (AppendResult, error) {
	actx, cancel := p.c.withAttemptTimeout(ctx)
	defer cancel()
	res, err := p.c.appendOnce(actx, p.url, b.body, AppendOptions{
		ContentType: ct,
		Producer:    &Producer{ID: p.pid, Epoch: epoch, Seq: b.seq},
		Close:       b.close,
	})
	return res, p.c.timedOut(ctx, actx, "write", p.url, err)
}

// ensureEpoch consults the epoch store once, before the first request
// (which is alone in flight).
func (p *pipeline) ensureEpoch(ctx context.Context) error {
	p.mu.Lock()
	ready := p.epochReady
	p.mu.Unlock()
	if ready {
		return nil
	}
	if s := p.cfg.epochStore; s != nil {
		e, ok, err := s.LoadEpoch(ctx, p.pid)
		if err != nil {
			return &Error{Op: "write", URL: redactURL(p.url), Err: fmt.Errorf("load producer epoch: %w", err)}
		}
		epoch := p.cfg.epoch
		if ok && e+1 > epoch {
			epoch = e + 1
		}
		if epoch > protocol.MaxProducerNumber {
			return &Error{Op: "write", URL: redactURL(p.url), Err: fmt.Errorf("%w: producer epoch exhausted", ErrInvalidArgument)}
		}
		if err := s.SaveEpoch(ctx, p.pid, epoch); err != nil {
			return &Error{Op: "write", URL: redactURL(p.url), Err: fmt.Errorf("save producer epoch: %w", err)}
		}
		p.mu.Lock()
		p.epoch = epoch
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.epochReady = true
	p.mu.Unlock()
	return nil
}

// abortedOr returns Close's abort error if Close gave up, else err.
func (p *pipeline) abortedOr(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.aborted != nil {
		return p.aborted
	}
	return err
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
