package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/durablego/durable/internal/protocol"
)

// Producer identifies an idempotent producer. The server deduplicates
// appends by (ID, Epoch, Seq), which makes every retry of such an append
// safe: an append it has applied already is answered as a Duplicate, a
// lower Epoch than the one it knows is fenced (ErrStaleEpoch), and a Seq
// beyond the next expected one is refused (ErrProducerSeqGap).
type Producer struct {
	ID    string // stable, non-empty producer name
	Epoch int64  // incremented on every producer restart; in [0, 2^53-1]
	Seq   int64  // per-request sequence within the epoch, from 0; in [0, 2^53-1]
}

// AppendOptions configures Append and AppendJSON.
type AppendOptions struct {
	ContentType string    // must match the stream's; required when there is data (AppendJSON: application/json)
	Seq         string    // optional Stream-Seq: must be lexicographically greater than the last one
	Producer    *Producer // optional idempotent producer headers
	Close       bool      // close the stream atomically with this append
}

// AppendResult is the server's answer to an append.
type AppendResult struct {
	NextOffset    Offset // tail offset after the append; empty only on a Duplicate from a server that omits it
	Duplicate     bool   // producer appends only: the server had already applied this (ID, Epoch, Seq)
	Closed        bool   // the stream is closed now
	ProducerEpoch int64  // echoed Producer-Epoch (producer appends)
	ProducerSeq   int64  // highest accepted Producer-Seq for this epoch (producer appends)
}

// Append appends data to a stream (POST). An append with a Producer is
// retried per the RetryPolicy, since the server drops duplicates; a plain
// append is retried only when the connection could not be established,
// because a request that may have reached the server could otherwise be
// applied twice. Failures: ErrNotFound, ErrStreamClosed,
// ErrContentTypeMismatch, ErrSeqConflict, ErrStaleEpoch, ErrProducerSeqGap,
// ErrStatus (413: the body is larger than the server takes), and the other
// sentinels of Error.
func (c *Client) Append(ctx context.Context, stream string, data []byte, opts AppendOptions) (AppendResult, error) {
	u, err := c.streamURL(stream)
	if err != nil {
		return AppendResult{}, &Error{Op: "append", URL: redactURL(stream), Err: err}
	}
	return c.doAppend(ctx, "append", u, data, opts, true)
}

// AppendJSON appends v as exactly one JSON message: it is marshalled and
// wrapped in a one-element array, so a slice value stays one message. The
// content type defaults to application/json.
func (c *Client) AppendJSON(ctx context.Context, stream string, v any, opts AppendOptions) (AppendResult, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return AppendResult{}, &Error{Op: "append", URL: redactURL(stream), Err: fmt.Errorf("%w: %w", ErrInvalidArgument, err)}
	}
	body := make([]byte, 0, len(b)+2)
	body = append(append(append(body, '['), b...), ']')
	if opts.ContentType == "" {
		opts.ContentType = protocol.ContentTypeJSON
	}
	return c.Append(ctx, stream, body, opts)
}

// appendOnce sends one append attempt of a Writer (Op "write") to a full
// stream URL without any retry or wait; the Writer owns the retry loop.
func (c *Client) appendOnce(ctx context.Context, url string, data []byte, opts AppendOptions) (AppendResult, error) {
	return c.doAppend(ctx, "write", url, data, opts, false)
}

func (c *Client) doAppend(ctx context.Context, op, u string, data []byte, opts AppendOptions, retry bool) (AppendResult, error) {
	cl, err := c.appendCall(op, u, data, opts, retry)
	if err != nil {
		return AppendResult{}, err
	}
	resp, err := c.send(ctx, cl)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && (e.Err == ErrSeqConflict || e.Err == ErrContentTypeMismatch) && len(data) > 0 {
			c.explainConflict(ctx, cl, e)
		}
		return AppendResult{}, err
	}
	if resp.status < 200 || resp.status > 299 {
		return AppendResult{}, c.statusError(cl, resp)
	}
	return c.appendResult(cl, resp, data, opts)
}

// appendCall checks an append's options and builds its request.
func (c *Client) appendCall(op, u string, data []byte, opts AppendOptions, retry bool) (*call, error) {
	cl := &call{op: op, method: http.MethodPost, url: u, header: http.Header{}, retry: retry}
	if len(data) == 0 && !opts.Close {
		return nil, c.opError(cl, 0, fmt.Errorf("%w: empty append (only a close may be empty)", ErrInvalidArgument))
	}
	if len(data) > 0 {
		if opts.ContentType == "" {
			return nil, c.opError(cl, 0, fmt.Errorf("%w: ContentType is required with data", ErrInvalidArgument))
		}
		cl.body = data
	}
	if opts.ContentType != "" {
		if err := validHeaderValue("ContentType", opts.ContentType); err != nil {
			return nil, c.opError(cl, 0, err)
		}
		cl.header.Set("Content-Type", opts.ContentType)
	}
	if opts.Seq != "" {
		if err := validHeaderValue("Seq", opts.Seq); err != nil {
			return nil, c.opError(cl, 0, err)
		}
		cl.header.Set(protocol.HeaderSeq, opts.Seq)
	}
	if opts.Close {
		cl.header.Set(protocol.HeaderClosed, "true")
		// A close-only request is idempotent (PROTOCOL.md §5.2): safe to retry.
		cl.idempotent = len(data) == 0
	}
	if p := opts.Producer; p != nil {
		if err := validProducer(p); err != nil {
			return nil, c.opError(cl, 0, err)
		}
		cl.producer = true
		cl.header.Set(protocol.HeaderProducerID, p.ID)
		cl.header.Set(protocol.HeaderProducerEpoch, strconv.FormatInt(p.Epoch, 10))
		cl.header.Set(protocol.HeaderProducerSeq, strconv.FormatInt(p.Seq, 10))
	}
	return cl, nil
}

// appendResult reads the result of an append from its 2xx answer.
func (c *Client) appendResult(cl *call, resp *response, data []byte, opts AppendOptions) (AppendResult, error) {
	res := AppendResult{Closed: protocol.IsTrue(resp.header.Get(protocol.HeaderClosed))}
	// A producer duplicate (204) may come without Stream-Next-Offset: the
	// spec lists only the producer headers for it, and the Node reference
	// server omits the offset. Nothing was appended, so no offset is owed.
	duplicate := cl.producer && resp.status == http.StatusNoContent && len(data) > 0
	if !duplicate || resp.header.Get(protocol.HeaderNextOffset) != "" {
		var err error
		if res.NextOffset, err = nextOffset(resp.header); err != nil {
			return AppendResult{}, c.protocolError(cl, resp, err)
		}
	}
	if opts.Close && !res.Closed {
		return AppendResult{}, c.protocolError(cl, resp, fmt.Errorf("%w: close acknowledged without %s: true", ErrProtocol, protocol.HeaderClosed))
	}
	if !cl.producer {
		return res, nil
	}
	res.Duplicate = resp.status == http.StatusNoContent
	var err error
	if res.ProducerEpoch, err = c.producerNumber(cl, resp, protocol.HeaderProducerEpoch, opts.Producer.Epoch); err != nil {
		return AppendResult{}, err
	}
	if res.ProducerSeq, err = c.producerNumber(cl, resp, protocol.HeaderProducerSeq, opts.Producer.Seq); err != nil {
		return AppendResult{}, err
	}
	return res, nil
}

// producerNumber reads the producer epoch or sequence number the server
// echoed in header, or returns sent when it echoed none.
func (c *Client) producerNumber(cl *call, resp *response, header string, sent int64) (int64, error) {
	v := resp.header.Get(header)
	if v == "" {
		return sent, nil
	}
	n, ok := protocol.ParseProducerNumber(v)
	if !ok {
		return 0, c.protocolError(cl, resp, fmt.Errorf("%w: malformed %s %q", ErrProtocol, header, v))
	}
	return n, nil
}

// explainConflict looks into a 409 to an append with data that is either
// a content type mismatch or a Stream-Seq conflict (the protocol gives no
// header to tell them apart when Stream-Seq was sent): one HEAD (no retry)
// learns the stream's content type. If it differs from the request's, the
// error is ErrContentTypeMismatch and names both types; if the HEAD fails,
// the error stays as it was.
func (c *Client) explainConflict(ctx context.Context, cl *call, e *Error) {
	info, err := c.headOnce(ctx, cl.url)
	if err != nil || info.ContentType == "" {
		return
	}
	sent := cl.header.Get("Content-Type")
	if protocol.BaseMediaType(info.ContentType) != protocol.BaseMediaType(sent) {
		e.Err = fmt.Errorf("%w: sent %s, the stream's is %s", ErrContentTypeMismatch, sent, info.ContentType)
	}
}

// CloseStream closes the stream on the server (POST with Stream-Closed:
// true), appending data (nil: none) atomically as its last message;
// opts.Close is implied. It does not release anything in the Client. A
// close without data is idempotent and retried like a producer append;
// with data it is an append and follows Append's retry rule. Closing an
// already-closed stream succeeds when there is no data, and fails with
// ErrStreamClosed when there is. The result's NextOffset is the stream's
// final offset.
func (c *Client) CloseStream(ctx context.Context, stream string, data []byte, opts AppendOptions) (AppendResult, error) {
	u, err := c.streamURL(stream)
	if err != nil {
		return AppendResult{}, &Error{Op: "close", URL: redactURL(stream), Err: err}
	}
	opts.Close = true
	return c.doAppend(ctx, "close", u, data, opts, true)
}
