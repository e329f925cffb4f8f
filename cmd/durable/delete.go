package main

import (
	"context"
	"fmt"
	"io"
)

func init() {
	register(command{name: "delete", summary: "delete a stream and its data", run: runDelete})
}

const deleteHelp = `Deletes the stream and its data (DELETE). Deleting a stream that does not
exist is an error (exit 1).

` + connHelp

func runDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const name = "delete"
	fs := newCommandFlags(name, "STREAM [flags]", deleteHelp, stderr)
	var conn connFlags
	conn.register(fs)
	arg, err := parseStream(fs, args, stderr, name)
	if err != nil {
		return err
	}
	cl, stream, err := conn.connect(arg, stderr, name)
	if err != nil {
		return err
	}
	if err := cl.Delete(ctx, stream); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "deleted %s\n", redact(stream))
	return nil
}
