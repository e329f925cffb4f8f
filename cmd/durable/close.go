package main

import (
	"context"
	"fmt"
	"io"

	"github.com/durablego/durable"
)

func init() {
	register(command{name: "close", summary: "close a stream (no more appends), optionally with a final message", run: runClose})
}

const closeHelp = `Closes the stream: readers reach its end (EOF) after the last message and no
append is accepted any more. With DATA, that message is appended atomically
with the close (on a JSON stream DATA must be one JSON value, stored as one
message). Closing a closed stream without DATA succeeds; with DATA it is an
error. Prints the stream's final offset on stdout.

The content type of DATA is the stream's (learnt with a HEAD request) unless
--content-type is given.

` + connHelp

func runClose(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const name = "close"
	fs := newCommandFlags(name, "STREAM [DATA] [flags]", closeHelp, stderr)
	var conn connFlags
	conn.register(fs)
	contentType := fs.String("content-type", "", "content type of DATA (default: the stream's)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageErr(stderr, name, "want STREAM [DATA], got %d arguments", len(pos))
	}
	cl, stream, err := conn.connect(pos[0], stderr, name)
	if err != nil {
		return err
	}
	var (
		data []byte
		opts durable.AppendOptions
	)
	if len(pos) == 2 {
		ct, err := streamContentType(ctx, cl, stream, *contentType)
		if err != nil {
			return err
		}
		opts.ContentType = ct
		data = []byte(pos[1])
		if isJSONType(ct) {
			b, err := jsonBatch([][]byte{data})
			if err != nil {
				return usageErr(stderr, name, "DATA: %v", err)
			}
			data = b
		}
	}
	res, err := cl.CloseStream(ctx, stream, data, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "closed %s\n", redact(stream))
	fmt.Fprintln(stdout, res.NextOffset)
	return nil
}

// streamContentType returns ct if given, else the stream's content type from
// a HEAD request.
func streamContentType(ctx context.Context, cl *durable.Client, stream, ct string) (string, error) {
	if ct != "" {
		return ct, nil
	}
	info, err := cl.Head(ctx, stream)
	if err != nil {
		return "", err
	}
	if info.ContentType == "" {
		return "application/octet-stream", nil
	}
	return info.ContentType, nil
}
