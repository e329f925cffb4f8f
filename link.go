package durable

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/durablego/durable/internal/link"
	"github.com/durablego/durable/internal/retry"
)

// The Client as the module's other packages see it (internal/link).

func init() {
	link.Register(func(v any) (link.Client, bool) {
		c, ok := v.(*Client)
		if !ok || c == nil {
			return nil, false
		}
		return linked{c}, true
	})
}

// linked implements link.Client on a *Client.
type linked struct{ c *Client }

func (l linked) Do(ctx context.Context, req link.Request) (*link.Response, error) {
	u, err := l.c.streamURL(req.Target)
	if err != nil {
		return nil, &Error{Op: req.Op, URL: redactURL(req.Target), Err: err}
	}
	if req.Method == "" {
		return nil, &Error{Op: req.Op, URL: redactURL(u), Err: fmt.Errorf("%w: no method", ErrInvalidArgument)}
	}
	cl := &call{op: req.Op, method: req.Method, url: u, header: req.Header.Clone(), body: req.Body,
		retry: req.Retry, idempotent: req.Idempotent, stream: req.Open}
	resp, err := l.c.send(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := &link.Response{Status: resp.status, Header: resp.header, Body: resp.body}
	if resp.raw != nil {
		out.Open = resp.raw.Body
	}
	return out, nil
}

func (l linked) URL(target string) (string, error) { return l.c.streamURL(target) }

func (l linked) Policy() retry.Policy { return l.c.cfg.retry.internal() }

func (l linked) Classify(err error, idempotent bool) (bool, time.Duration) {
	return classifier(idempotent)(err)
}

func (l linked) Notify(ctx context.Context, op, url string) func(retry.Event) {
	return l.c.retryLogger(ctx, op, url)
}

func (l linked) Logger() *slog.Logger { return l.c.log }

func (l linked) Redact(url string) string { return redactURL(url) }

func (l linked) Commit(target, key, offset string, latency time.Duration, err error) {
	u, uerr := l.c.streamURL(target)
	if uerr != nil {
		u = target
	}
	l.c.cfg.hooks.onCommit(CommitEvent{Stream: streamOf(u), Key: key, Position: Position{Offset: offset}, Latency: latency, Err: err})
}
