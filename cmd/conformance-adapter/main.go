// Command conformance-adapter drives the durable SDK from the client
// conformance suite of the Durable Streams project
// (packages/client-conformance-tests): the suite's runner writes one JSON
// command per line on stdin and reads one JSON result per line on stdout.
//
// Every command is carried out with the SDK's public API: stream operations
// through durable.Client, catch-up, long-poll and SSE reads through
// Client.Read and Client.OpenSSE, auto-mode reads through durable.Reader,
// and idempotent producer commands through durable.Writer. Dynamic headers
// and parameters use durable.WithHeaderFunc and durable.WithQueryFunc.
//
// The init result reports these features, all backed by the SDK:
//
//   - batching: Writer seals batches on count, bytes and linger.
//   - sse, longPoll: Client.Read / Client.OpenSSE and Reader WithLive.
//   - auto: Reader WithLive(LiveAuto), catch-up then SSE falling back to long-poll.
//   - streaming: Reader.Next / Messages and SSEStream.Next deliver as data arrives.
//   - dynamicHeaders: WithHeaderFunc and WithQueryFunc, evaluated per attempt.
//   - retryOptions: WithRetry, checked by NewClient (maxRetries n is MaxAttempts n+1).
//   - batchItems: WithMaxBatch (its messages).
//   - strictZeroValidation: options reject zero instead of reading it as a default.
//
// The SDK reports what a successful call did rather than its HTTP status, so
// results carry the status the protocol assigns to that outcome (201 created,
// 200 existed, 204 duplicate producer append or long-poll timeout, else 200).
//
// Where the SDK deliberately behaves otherwise than the TypeScript reference
// client, the adapter reports the SDK's behaviour as it is: a plain append
// (without producer headers) answered with a 5xx is not retried, since it may
// have been applied; and a producer closing, without a final message, a
// stream that another producer already closed succeeds (Writer.CloseStream).
//
// Stdout carries only result lines; nothing is logged. Every command is
// answered within its own deadline (the read's timeoutMs, or the init
// timeoutMs for other operations, 20 s by default), well inside the
// runner's 30 s.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(context.Background(), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "conformance-adapter:", err)
		os.Exit(1)
	}
}

// maxLine bounds one command line.
const maxLine = 64 << 20

// run answers the commands read from in until EOF or shutdown.
func run(ctx context.Context, in io.Reader, out io.Writer) error {
	a := newAdapter()
	defer a.release()
	br := bufio.NewReaderSize(in, 64<<10)
	bw := bufio.NewWriter(out)
	enc := json.NewEncoder(bw) // escapes U+2028/U+2029, one value per line
	enc.SetEscapeHTML(false)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			res, stop := a.handleLine(ctx, line)
			if werr := enc.Encode(res); werr != nil {
				return werr
			}
			if werr := bw.Flush(); werr != nil {
				return werr
			}
			if stop {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readLine returns the next line without its end, or nothing for a blank
// line.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("command line longer than %d bytes", maxLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r' || line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
			line = line[:len(line)-1]
		}
		return line, err
	}
}

// handleLine decodes and runs one command; stop reports a shutdown.
func (a *adapter) handleLine(ctx context.Context, line []byte) (res result, stop bool) {
	var cmd command
	if err := json.Unmarshal(line, &cmd); err != nil {
		var probe struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(line, &probe)
		t := probe.Type
		if t == "" {
			t = "unknown"
		}
		return errResult(t, codeParse, 0, "cannot parse command: "+err.Error()), false
	}
	defer func() {
		// A bug in one command must not kill the adapter: the runner would
		// fail every later test with "adapter exited".
		if v := recover(); v != nil {
			res, stop = errResult(cmd.Type, codeInternal, 0, fmt.Sprintf("adapter panic: %v", v)), false
		}
	}()
	res = a.handle(ctx, &cmd)
	return res, cmd.Type == "shutdown"
}

// errResult builds an error result.
func errResult(cmdType, code string, status int, msg string) result {
	return result{Type: "error", Success: false, CommandType: cmdType, ErrorCode: code, Status: status, Message: msg}
}
