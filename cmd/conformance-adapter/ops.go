package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/durablego/durable"
)

// The SDK reports the outcome of a successful call, not its HTTP status;
// results carry the status the protocol gives that outcome (PROTOCOL.md):
// 201 for a stream created, 200 for one that already existed, 204 for a
// duplicate producer append, 200 for the other successes.

func (a *adapter) create(ctx context.Context, cmd *command) result {
	ctx, cancel := a.opContext(ctx)
	defer cancel()
	c, err := a.client(cmd.Headers)
	if err != nil {
		return failure("create", err, false)
	}
	opts := durable.CreateOptions{ContentType: cmd.ContentType, Closed: cmd.Closed}
	if cmd.TTLSeconds != nil {
		opts.TTL = time.Duration(*cmd.TTLSeconds) * time.Second
	}
	if cmd.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, cmd.ExpiresAt)
		if err != nil {
			return errResult("create", codeInvalidArgument, 0, "expiresAt: "+err.Error())
		}
		opts.ExpiresAt = t
	}
	if cmd.Data != nil {
		opts.Data = []byte(*cmd.Data)
	}
	res, err := c.Create(ctx, a.streamURL(cmd.Path), opts)
	if err != nil {
		return failure("create", err, false)
	}
	ct := res.ContentType
	if ct == "" {
		ct = cmd.ContentType
	}
	if ct != "" {
		a.ctypes[cmd.Path] = ct
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return result{Type: "create", Success: true, Status: status, Offset: string(res.NextOffset)}
}

// connect checks that the stream exists (HEAD) and learns its content type.
func (a *adapter) connect(ctx context.Context, cmd *command) result {
	ctx, cancel := a.opContext(ctx)
	defer cancel()
	c, err := a.client(cmd.Headers)
	if err != nil {
		return failure("connect", err, false)
	}
	info, err := c.Head(ctx, a.streamURL(cmd.Path))
	if err != nil {
		return failure("connect", err, false)
	}
	a.ctypes[cmd.Path] = info.ContentType
	return result{Type: "connect", Success: true, Status: http.StatusOK, Offset: string(info.NextOffset)}
}

func (a *adapter) append(ctx context.Context, cmd *command) result {
	ctx, cancel := a.opContext(ctx)
	defer cancel()
	c, err := a.client(cmd.Headers)
	if err != nil {
		return failure("append", err, false)
	}
	var data []byte
	if cmd.Data != nil {
		data = []byte(*cmd.Data)
		if cmd.Binary {
			if data, err = base64.StdEncoding.DecodeString(*cmd.Data); err != nil {
				return errResult("append", codeInvalidArgument, 0, "data is not base64: "+err.Error())
			}
		}
	}
	ct, err := a.contentType(ctx, c, cmd.Path)
	if err != nil {
		// The append itself reports why the stream cannot take data.
		ct = "application/octet-stream"
	}
	opts := durable.AppendOptions{ContentType: ct}
	if cmd.Seq != nil {
		opts.Seq = strconv.FormatInt(*cmd.Seq, 10)
	}
	if cmd.ProducerID != "" || cmd.ProducerEpoch != nil || cmd.ProducerSeq != nil {
		p := &durable.Producer{ID: cmd.ProducerID}
		if cmd.ProducerEpoch != nil {
			p.Epoch = *cmd.ProducerEpoch
		}
		if cmd.ProducerSeq != nil {
			p.Seq = *cmd.ProducerSeq
		}
		opts.Producer = p
	}
	a.dyn.begin() // only the append's own request counts
	res, err := c.Append(ctx, a.streamURL(cmd.Path), data, opts)
	if err != nil {
		return a.withSent(failure("append", err, false))
	}
	r := result{Type: "append", Success: true, Status: http.StatusOK, Offset: string(res.NextOffset)}
	if opts.Producer != nil {
		if res.Duplicate {
			r.Status = http.StatusNoContent
		}
		r.Duplicate = ptr(res.Duplicate)
		r.ProducerEpoch = ptr(res.ProducerEpoch)
		r.ProducerSeq = ptr(res.ProducerSeq)
	}
	return a.withSent(r)
}

func (a *adapter) head(ctx context.Context, cmd *command) result {
	ctx, cancel := a.opContext(ctx)
	defer cancel()
	c, err := a.client(cmd.Headers)
	if err != nil {
		return failure("head", err, false)
	}
	info, err := c.Head(ctx, a.streamURL(cmd.Path))
	if err != nil {
		return failure("head", err, false)
	}
	a.ctypes[cmd.Path] = info.ContentType
	r := result{
		Type: "head", Success: true, Status: http.StatusOK, Offset: string(info.NextOffset),
		ContentType: info.ContentType, StreamClosed: ptr(info.Closed),
	}
	if info.TTL > 0 {
		r.TTLSeconds = ptr(int64(info.TTL / time.Second))
	}
	if !info.ExpiresAt.IsZero() {
		r.ExpiresAt = info.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return r
}

func (a *adapter) delete(ctx context.Context, cmd *command) result {
	ctx, cancel := a.opContext(ctx)
	defer cancel()
	c, err := a.client(cmd.Headers)
	if err != nil {
		return failure("delete", err, false)
	}
	if err := c.Delete(ctx, a.streamURL(cmd.Path)); err != nil {
		return failure("delete", err, false)
	}
	delete(a.ctypes, cmd.Path)
	return result{Type: "delete", Success: true, Status: http.StatusOK}
}

// close closes the stream (Client.CloseStream), with an optional final
// message. server-close, which the runner normally performs itself, is
// answered the same way.
func (a *adapter) close(ctx context.Context, cmd *command) result {
	ctx, cancel := a.opContext(ctx)
	defer cancel()
	c, err := a.client(cmd.Headers)
	if err != nil {
		return failure(cmd.Type, err, false)
	}
	var (
		data []byte
		opts durable.AppendOptions
	)
	if cmd.Data != nil {
		data = []byte(*cmd.Data)
		opts.ContentType = cmd.ContentType
		if opts.ContentType == "" {
			if opts.ContentType, err = a.contentType(ctx, c, cmd.Path); err != nil {
				return failure(cmd.Type, err, false)
			}
		}
	}
	res, err := c.CloseStream(ctx, a.streamURL(cmd.Path), data, opts)
	if err != nil {
		return failure(cmd.Type, err, false)
	}
	return result{Type: "close", Success: true, FinalOffset: ptr(string(res.NextOffset))}
}
