package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/durablego/durable"
)

func init() {
	register(command{name: "create", summary: "create a stream (or confirm an identical one exists)", run: runCreate})
}

const createHelp = `Creates the stream with a PUT. Creating a stream that already exists with the
same configuration succeeds (reported on stderr as "exists"); a different
configuration (content type, expiry, closed state) is an error.
Prints the stream's next offset on stdout.

--ttl takes a duration (90s, 24h) or seconds; --expires-at an RFC 3339 time;
not both. --closed creates the stream already closed (--data is then its whole
content). With a JSON content type --data must be JSON: an array is stored as
one message per element.

` + connHelp

func runCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const name = "create"
	fs := newCommandFlags(name, "STREAM [flags]", createHelp, stderr)
	var conn connFlags
	conn.register(fs)
	contentType := fs.String("content-type", "", "stream content type (default: the server's, application/octet-stream)")
	jsonCT := fs.Bool("json", false, "shorthand for --content-type application/json")
	ttl := fs.String("ttl", "", "sliding time-to-live: a duration (24h) or seconds")
	expiresAt := fs.String("expires-at", "", "absolute expiry, RFC 3339 (2026-12-31T23:59:59Z)")
	closed := fs.Bool("closed", false, "create the stream already closed")
	data := fs.String("data", "", "initial content")
	arg, err := parseStream(fs, args, stderr, name)
	if err != nil {
		return err
	}
	opts := durable.CreateOptions{ContentType: *contentType, Closed: *closed}
	if *jsonCT {
		if *contentType != "" && !isJSONType(*contentType) {
			return usageErr(stderr, name, "--json and --content-type %q disagree", *contentType)
		}
		if opts.ContentType == "" {
			opts.ContentType = jsonType
		}
	}
	if *ttl != "" && *expiresAt != "" {
		return usageErr(stderr, name, "--ttl and --expires-at are mutually exclusive")
	}
	if *ttl != "" {
		if opts.TTL, err = parseTTL(*ttl); err != nil {
			return usageErr(stderr, name, "%v", err)
		}
	}
	if *expiresAt != "" {
		if opts.ExpiresAt, err = parseExpiresAt(*expiresAt); err != nil {
			return usageErr(stderr, name, "%v", err)
		}
	}
	if flagGiven(fs, "data") {
		opts.Data = []byte(*data)
		if isJSONType(opts.ContentType) && !json.Valid(opts.Data) {
			return usageErr(stderr, name, "--data is not valid JSON for a JSON stream")
		}
	}
	cl, stream, err := conn.connect(arg, stderr, name)
	if err != nil {
		return err
	}
	res, err := cl.Create(ctx, stream, opts)
	if err != nil {
		return explainExists(ctx, cl, stream, opts, err)
	}
	verb := "created"
	if !res.Created {
		verb = "exists"
	}
	state := ""
	if res.Closed {
		state = ", closed"
	}
	fmt.Fprintf(stderr, "%s %s (%s%s)\n", verb, redact(stream), res.ContentType, state)
	fmt.Fprintln(stdout, res.NextOffset)
	return nil
}
