package durable

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

// CreateOptions configures Create. The zero value creates an open stream
// with the server's default content type (application/octet-stream), no
// expiry and no initial data.
type CreateOptions struct {
	ContentType string        // stream content type; "" lets the server choose (a fork inherits its source's)
	TTL         time.Duration // sliding time-to-live, whole seconds; 0 = none
	ExpiresAt   time.Time     // absolute expiry; zero = none. Not together with TTL.
	Closed      bool          // create the stream already closed (Data is then its whole content)
	Data        []byte        // initial content

	ForkFrom      string // create a fork of this stream (name or URL on the same server); "" = no fork
	ForkOffset    Offset // divergence point in the source; "" = its current tail
	ForkSubOffset int64  // messages (JSON) or bytes past ForkOffset; 0 = none
}

// CreateResult describes the stream after Create.
type CreateResult struct {
	Created     bool   // true for 201 Created, false when an identical stream already existed (200)
	NextOffset  Offset // tail offset after any initial data
	ContentType string // the stream's content type, as the server reported it
	Closed      bool   // the stream is closed
}

// Create creates a stream (PUT), or confirms that one with the same
// configuration exists. A stream with a different configuration (content
// type, expiry, closed state; or a soft-deleted stream at that path) fails
// with ErrStreamExists. For a fork whose ContentType differs from the
// source's the server also answers 409, reported as ErrStreamExists: the
// protocol gives no header to tell the two apart. Create is retried per the
// RetryPolicy: PUT is idempotent.
func (c *Client) Create(ctx context.Context, stream string, opts CreateOptions) (CreateResult, error) {
	u, err := c.streamURL(stream)
	if err != nil {
		return CreateResult{}, &Error{Op: "create", URL: redactURL(stream), Err: err}
	}
	cl := &call{op: "create", method: http.MethodPut, url: u, header: http.Header{}, retry: true}
	if err := c.createHeaders(cl.header, opts); err != nil {
		return CreateResult{}, c.opError(cl, 0, err)
	}
	if len(opts.Data) > 0 {
		cl.body = opts.Data
	}
	resp, err := c.send(ctx, cl)
	if err != nil {
		return CreateResult{}, c.notFoundHint(err)
	}
	if resp.status != http.StatusCreated && resp.status != http.StatusOK {
		return CreateResult{}, c.statusError(cl, resp)
	}
	next, err := nextOffset(resp.header)
	if err != nil {
		return CreateResult{}, c.protocolError(cl, resp, err)
	}
	return CreateResult{
		Created:     resp.status == http.StatusCreated,
		NextOffset:  next,
		ContentType: resp.header.Get("Content-Type"),
		Closed:      protocol.IsTrue(resp.header.Get(protocol.HeaderClosed)),
	}, nil
}

func (c *Client) createHeaders(h http.Header, opts CreateOptions) error {
	if opts.ContentType != "" {
		if err := validHeaderValue("ContentType", opts.ContentType); err != nil {
			return err
		}
		h.Set("Content-Type", opts.ContentType)
	}
	if opts.TTL != 0 && !opts.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: TTL and ExpiresAt are mutually exclusive", ErrInvalidArgument)
	}
	if opts.TTL != 0 {
		s, err := ttlSeconds(opts.TTL)
		if err != nil {
			return err
		}
		h.Set(protocol.HeaderTTL, s)
	}
	if !opts.ExpiresAt.IsZero() {
		h.Set(protocol.HeaderExpiresAt, opts.ExpiresAt.UTC().Format(time.RFC3339Nano))
	}
	if opts.Closed {
		h.Set(protocol.HeaderClosed, "true")
	}
	if opts.ForkFrom == "" {
		if opts.ForkOffset != "" || opts.ForkSubOffset != 0 {
			return fmt.Errorf("%w: ForkOffset/ForkSubOffset need ForkFrom", ErrInvalidArgument)
		}
		return nil
	}
	src, err := c.streamURL(opts.ForkFrom)
	if err != nil {
		return err
	}
	su, err := url.Parse(src)
	if err != nil {
		return fmt.Errorf("%w: ForkFrom: %w", ErrInvalidArgument, err)
	}
	if su.Host != c.base.Host {
		return fmt.Errorf("%w: ForkFrom must be on the same server", ErrInvalidArgument)
	}
	h.Set(protocol.HeaderForkedFrom, su.EscapedPath())
	if opts.ForkOffset != "" {
		if err := validHeaderValue("ForkOffset", string(opts.ForkOffset)); err != nil {
			return err
		}
		h.Set(protocol.HeaderForkOffset, string(opts.ForkOffset))
	}
	if opts.ForkSubOffset < 0 {
		return fmt.Errorf("%w: ForkSubOffset must be ≥ 0", ErrInvalidArgument)
	}
	if opts.ForkSubOffset > 0 {
		h.Set(protocol.HeaderForkSubOffset, strconv.FormatInt(opts.ForkSubOffset, 10))
	}
	return nil
}

// notFoundHint adds to a 404 on Create the likeliest cause when the base
// URL is not the usual streams root: it may not be the streams root at all.
func (c *Client) notFoundHint(err error) error {
	var e *Error
	if !errors.As(err, &e) || e.Err != ErrNotFound || c.base.Path == defaultStreamsRoot {
		return err
	}
	usual := url.URL{Scheme: c.base.Scheme, Host: c.base.Host, Path: defaultStreamsRoot}
	e.hint = "is the base URL the streams root? The usual form is " + usual.String()
	return e
}
