package main

import (
	"context"
	"fmt"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
)

// producerAppender appends through an idempotent producer (durable.Writer):
// batched, pipelined, and retried without ever storing a message twice.
type producerAppender struct {
	w      *durable.Writer[[]byte]
	epochs *offsetstore.File // --epoch-file, closed by finish
	n      int               // messages queued
}

// newProducerAppender opens the Writer. Each run claims a new epoch, which
// fences an earlier process with the same producer ID: --epoch, else the
// current Unix time in milliseconds (with --epoch-file: at least the saved
// epoch + 1).
func newProducerAppender(cl *durable.Client, stream, ct string, f appendFlags) (appender, error) {
	opts := []durable.Option{
		durable.WithProducerID(f.producerID),
		durable.WithContentType(ct),
		durable.WithLinger(f.linger),
		durable.WithMaxBatch(1000, f.maxBatchBytes),
		durable.WithMaxInFlight(f.maxInFlight),
	}
	if f.maxBatchBytes > 8<<20 {
		opts = append(opts, durable.WithBuffer(8192, f.maxBatchBytes))
	}
	p := &producerAppender{}
	switch {
	case f.epochFile != "":
		st, err := offsetstore.OpenFile(f.epochFile)
		if err != nil {
			return nil, err
		}
		p.epochs = st
		// The larger of the saved epoch + 1 and the clock: never below an
		// earlier run's, even if the clock went back.
		opts = append(opts, durable.WithEpochStore(st), durable.WithEpoch(time.Now().UnixMilli()))
	case f.epoch >= 0:
		opts = append(opts, durable.WithEpoch(f.epoch))
	default:
		opts = append(opts, durable.WithEpoch(time.Now().UnixMilli()))
	}
	w, err := durable.NewWriter(cl, stream, durable.BytesCodec{}, opts...)
	if err != nil {
		if p.epochs != nil {
			p.epochs.Close()
		}
		return nil, err
	}
	p.w = w
	return p, nil
}

func (p *producerAppender) append(ctx context.Context, msgs [][]byte) error {
	for _, m := range msgs {
		if err := p.w.Write(ctx, m); err != nil {
			return err
		}
		p.n++
	}
	return nil
}

// finish flushes and closes the Writer. On interruption it still waits (up
// to 30 s) for what was queued to land.
func (p *producerAppender) finish(ctx context.Context) (durable.Offset, int, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := p.w.Close(cctx)
	if p.epochs != nil {
		if cerr := p.epochs.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	last, ok := p.w.LastAcked()
	if err != nil {
		landed := "no message landed"
		if ok {
			landed = "messages landed up to offset " + string(last) + ", none after"
		}
		pr := p.w.Producer()
		return last, 0, fmt.Errorf("%w (producer %s, epoch %d: %s)", err, pr.ID, pr.Epoch, landed)
	}
	return last, p.n, nil
}
