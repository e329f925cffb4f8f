package durable

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/durablego/durable/internal/protocol"
)

// WithQueryFunc sets a function whose query parameters are added to the URL
// of every HTTP request the Client sends (unary calls, reads, long-polls,
// SSE connections, and the requests of Readers and Writers), computed again
// for every attempt. Protocol parameters stay authoritative: the protocol's
// own names (offset, live, cursor) are never taken from the function, even
// on a request that does not use them, and a name the request URL already
// has (for example a parameter of a full stream URL) is never replaced. Query values that look like
// secrets are redacted from error messages like any other.
//
// The function is called before every attempt, retries included, with the
// context of the call; an error it returns fails the call. NewClient only.
func WithQueryFunc(fn func(ctx context.Context) (url.Values, error)) Option {
	return clientOption("WithQueryFunc", func(c *config) {
		if fn == nil {
			c.fail("WithQueryFunc: nil function")
			return
		}
		c.queryFunc = fn
	})
}

// applyQuery sets the query of req to that of rawURL (the call's URL, with
// its protocol parameters) followed by the QueryFunc's parameters whose
// names are neither the protocol's nor already in rawURL. Without a QueryFunc it does nothing.
func (c *Client) applyQuery(ctx context.Context, req *http.Request, rawURL string) error {
	if c.cfg.queryFunc == nil {
		return nil
	}
	base, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	extra, err := c.cfg.queryFunc(ctx)
	if err != nil {
		return fmt.Errorf("query function: %w", err)
	}
	have := base.Query()
	add := url.Values{}
	for k, vs := range extra {
		if _, ok := have[k]; ok || k == "" || reservedQuery(k) {
			continue
		}
		add[k] = append([]string(nil), vs...)
	}
	q := base.RawQuery
	if enc := add.Encode(); enc != "" {
		if q != "" {
			q += "&"
		}
		q += enc
	}
	req.URL.RawQuery = q
	return nil
}

// reservedQuery reports whether name is a query parameter of the protocol.
func reservedQuery(name string) bool {
	switch name {
	case protocol.QueryOffset, protocol.QueryLive, protocol.QueryCursor:
		return true
	}
	return false
}
