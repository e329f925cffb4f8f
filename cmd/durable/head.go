package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

func init() {
	register(command{name: "head", summary: "print a stream's metadata", run: runHead})
}

const headHelp = `Prints the stream's metadata (HEAD) on stdout, one "name: value" line each:
url, content-type, next-offset, closed, and ttl / expires-at when set.
With --json, prints one JSON object instead.

` + connHelp

// headJSON is the --json output of head.
type headJSON struct {
	URL         string `json:"url"`
	ContentType string `json:"contentType"`
	NextOffset  string `json:"nextOffset"`
	Closed      bool   `json:"closed"`
	TTLSeconds  int64  `json:"ttlSeconds,omitempty"`
	ExpiresAt   string `json:"expiresAt,omitempty"`
}

func runHead(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const name = "head"
	fs := newCommandFlags(name, "STREAM [flags]", headHelp, stderr)
	var conn connFlags
	conn.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON object")
	arg, err := parseStream(fs, args, stderr, name)
	if err != nil {
		return err
	}
	cl, stream, err := conn.connect(arg, stderr, name)
	if err != nil {
		return err
	}
	info, err := cl.Head(ctx, stream)
	if err != nil {
		return err
	}
	out := headJSON{
		URL:         redact(stream),
		ContentType: info.ContentType,
		NextOffset:  string(info.NextOffset),
		Closed:      info.Closed,
		TTLSeconds:  int64(info.TTL / time.Second),
	}
	if !info.ExpiresAt.IsZero() {
		out.ExpiresAt = info.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	if *asJSON {
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(stdout, "url: %s\ncontent-type: %s\nnext-offset: %s\nclosed: %t\n", out.URL, out.ContentType, out.NextOffset, out.Closed)
	if out.TTLSeconds != 0 {
		fmt.Fprintf(stdout, "ttl: %ds\n", out.TTLSeconds)
	}
	if out.ExpiresAt != "" {
		fmt.Fprintf(stdout, "expires-at: %s\n", out.ExpiresAt)
	}
	return nil
}
