package durable

import (
	"context"
	"fmt"

	"github.com/durablego/durable/internal/retry"
)

// LiveMode selects how a read waits for data.
type LiveMode string

// Live modes.
const (
	LiveNone     LiveMode = ""          // catch-up: answer at once, possibly with no data
	LiveLongPoll LiveMode = "long-poll" // wait (server-defined timeout) for data when at the tail
	LiveSSE      LiveMode = "sse"       // Server-Sent Events; Read returns the data up to the first control event
	LiveAuto     LiveMode = "auto"      // Reader only: SSE, falling back to long-poll; invalid for Read
)

// ReadOptions configures Read.
type ReadOptions struct {
	Offset      Offset   // where to start; "" is the protocol's default, the start of the stream (same as OffsetStart)
	Live        LiveMode // LiveNone, LiveLongPoll or LiveSSE
	Cursor      string   // echo of the last Chunk.Cursor (CDN collapsing)
	IfNoneMatch string   // ETag of a previous identical catch-up read; a match returns NotModified
	ContentType string   // the stream's content type, if known: used with LiveSSE to merge JSON batches
}

// Chunk is the result of one read request.
type Chunk struct {
	Data        []byte // the bytes read; for application/json streams a JSON array of messages
	ContentType string // the stream's content type ("" when unknown, e.g. some SSE reads)
	NextOffset  Offset // where the next read starts
	Cursor      string // echo as ReadOptions.Cursor on the next live read
	UpToDate    bool   // the data reaches the stream's tail at response time (not EOF)
	Closed      bool   // EOF: the stream is closed and NextOffset is its final offset
	NotModified bool   // 304 for IfNoneMatch: Data is empty, reuse the cached chunk
	ETag        string // entity tag, for IfNoneMatch
}

// Read performs one read request (GET) from opts.Offset: a catch-up read,
// a long-poll (which may end with no data and UpToDate at the server's
// timeout) or, with LiveSSE, one SSE connection read up to its first
// control event. Transient failures are retried per the RetryPolicy;
// WithRequestTimeout applies to catch-up reads only.
//
// Responses are checked: a missing or sentinel Stream-Next-Offset, an
// offset before the requested one, a non-array body on a JSON stream, an
// event-stream answer to a plain read, or a 204/304 that was not asked for
// are ErrProtocol; a body over WithMaxResponseBytes is ErrResponseTooLarge.
func (c *Client) Read(ctx context.Context, stream string, opts ReadOptions) (Chunk, error) {
	u, err := c.streamURL(stream)
	if err != nil {
		return Chunk{}, &Error{Op: "read", URL: redactURL(stream), Err: err}
	}
	switch opts.Live {
	case LiveNone, LiveLongPoll:
	case LiveSSE:
		s, err := c.OpenSSE(ctx, u, ReadOptions{Offset: opts.Offset, Cursor: opts.Cursor, ContentType: opts.ContentType})
		if err != nil {
			return Chunk{}, err
		}
		defer s.Close()
		return s.Next(ctx)
	default:
		return Chunk{}, &Error{Op: "read", URL: redactURL(u), Err: fmt.Errorf("%w: live mode %q not valid for Read", ErrInvalidArgument, opts.Live)}
	}
	q := readQuery{offset: opts.Offset, live: opts.Live, cursor: opts.Cursor, ifNoneMatch: opts.IfNoneMatch,
		limit: c.cfg.maxResponse, ctype: opts.ContentType, checkJSON: true}
	var (
		raw rawChunk
		buf []byte
	)
	err = retry.Do(ctx, retry.NewSchedule(c.cfg.retry.internal()), func(ctx context.Context) error {
		if opts.Live != LiveNone {
			var err error
			raw, err = c.getChunk(ctx, u, q, &buf)
			return err
		}
		actx, cancel := c.withAttemptTimeout(ctx)
		defer cancel()
		var err error
		raw, err = c.getChunk(actx, u, q, &buf)
		return c.timedOut(ctx, actx, "read", u, err)
	}, classifier(true), c.retryLogger(ctx, "read", u))
	if err != nil {
		return Chunk{}, c.interrupted(ctx, err)
	}
	return Chunk{Data: raw.data, ContentType: raw.ctype, NextOffset: raw.next, Cursor: raw.cursor, UpToDate: raw.upToDate,
		Closed: raw.closed, NotModified: raw.notModified, ETag: raw.etag}, nil
}
