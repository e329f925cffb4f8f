package durable

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

// StreamInfo is a stream's metadata as reported by HEAD.
type StreamInfo struct {
	ContentType string        // the stream's content type
	NextOffset  Offset        // the tail offset
	TTL         time.Duration // sliding time-to-live; 0 = none
	ExpiresAt   time.Time     // absolute expiry; zero = none
	Closed      bool          // no more appends will be accepted
}

// Head returns a stream's metadata (HEAD): the canonical way to learn its
// tail offset and whether it is closed. Retried per the RetryPolicy.
// Failures: ErrNotFound, ErrGone, ...; a response without a valid
// Stream-Next-Offset, Stream-TTL or Stream-Expires-At is ErrProtocol.
func (c *Client) Head(ctx context.Context, stream string) (StreamInfo, error) {
	u, err := c.streamURL(stream)
	if err != nil {
		return StreamInfo{}, &Error{Op: "head", URL: redactURL(stream), Err: err}
	}
	return c.doHead(ctx, u, true)
}

// headOnce sends one HEAD to a full stream URL, without retry.
func (c *Client) headOnce(ctx context.Context, u string) (StreamInfo, error) {
	return c.doHead(ctx, u, false)
}

func (c *Client) doHead(ctx context.Context, u string, retry bool) (StreamInfo, error) {
	cl := &call{op: "head", method: http.MethodHead, url: u, retry: retry}
	resp, err := c.send(ctx, cl)
	if err != nil {
		return StreamInfo{}, err
	}
	if resp.status != http.StatusOK {
		return StreamInfo{}, c.statusError(cl, resp)
	}
	info := StreamInfo{
		ContentType: resp.header.Get("Content-Type"),
		Closed:      protocol.IsTrue(resp.header.Get(protocol.HeaderClosed)),
	}
	if info.NextOffset, err = nextOffset(resp.header); err != nil {
		return StreamInfo{}, c.protocolError(cl, resp, err)
	}
	if v := resp.header.Get(protocol.HeaderTTL); v != "" {
		n, ok := protocol.ParseTTL(v)
		if !ok || n > int64(1<<62/time.Second) {
			return StreamInfo{}, c.protocolError(cl, resp, fmt.Errorf("%w: malformed %s %q", ErrProtocol, protocol.HeaderTTL, v))
		}
		info.TTL = time.Duration(n) * time.Second
	}
	if v := resp.header.Get(protocol.HeaderExpiresAt); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return StreamInfo{}, c.protocolError(cl, resp, fmt.Errorf("%w: malformed %s %q", ErrProtocol, protocol.HeaderExpiresAt, v))
		}
		info.ExpiresAt = t
	}
	return info, nil
}

// Delete deletes a stream and its data (DELETE). Retried per the
// RetryPolicy; note that if a first attempt was applied but its response
// lost, the retry reports ErrNotFound. Failures: ErrNotFound, ErrGone,
// ErrStatus, ...
func (c *Client) Delete(ctx context.Context, stream string) error {
	u, err := c.streamURL(stream)
	if err != nil {
		return &Error{Op: "delete", URL: redactURL(stream), Err: err}
	}
	cl := &call{op: "delete", method: http.MethodDelete, url: u, retry: true}
	resp, err := c.send(ctx, cl)
	if err != nil {
		return err
	}
	if resp.status < 200 || resp.status > 299 {
		return c.statusError(cl, resp)
	}
	return nil
}
