package main

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/stretchr/testify/require"
)

func TestInit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)

	// Nothing but init, dynamic settings and validate works before init.
	fails(t, s.do(map[string]any{"type": "head", "path": "/x"}), "head", codeInternal, 0)
	fails(t, s.do(map[string]any{"type": "init", "serverUrl": "ftp://nope"}), "init", codeInvalidArgument, 0)

	res := s.init(e)
	require.Equal(t, clientName, res["clientName"])
	require.Equal(t, clientVersion, res["clientVersion"])
	require.Equal(t, map[string]any{
		"batching": true, "sse": true, "longPoll": true, "auto": true, "streaming": true,
		"dynamicHeaders": true, "retryOptions": true, "batchItems": true, "strictZeroValidation": true,
	}, res["features"])
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)
	fails(t, s.doLine([]byte(`{"type":"append",`)), "unknown", codeParse, 0)
	fails(t, s.doLine([]byte(`{"type":"append","path":7}`)), "append", codeParse, 0)
	fails(t, s.do(map[string]any{"type": "fly"}), "fly", codeNotSupported, 0)
	// Blank lines are not commands and get no answer.
	_, err := s.in.Write([]byte("\n  \n"))
	require.NoError(t, err)
	ok(t, s.do(map[string]any{"type": "clear-dynamic"}), "clear-dynamic")
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)
	p := s.create("text/plain")
	ok(t, s.do(map[string]any{"type": "idempotent-append", "path": p, "producerId": "p", "epoch": 0, "data": "x"}), "idempotent-append")
	ok(t, s.do(map[string]any{"type": "shutdown"}), "shutdown")
	select {
	case err := <-s.done:
		require.NoError(t, err)
		s.done <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("adapter still running after shutdown")
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)
	p := newPath()
	res := ok(t, s.do(map[string]any{"type": "create", "path": p, "contentType": "text/plain"}), "create")
	require.EqualValues(t, 201, res["status"])
	require.NotEmpty(t, res["offset"])
	res = ok(t, s.do(map[string]any{"type": "create", "path": p, "contentType": "text/plain"}), "create")
	require.EqualValues(t, 200, res["status"], "same configuration again")
	fails(t, s.do(map[string]any{"type": "create", "path": p, "contentType": "application/json"}), "create", codeConflict, 409)
	fails(t, s.do(map[string]any{"type": "create", "path": newPath(), "expiresAt": "tomorrow"}), "create", codeInvalidArgument, 0)

	// TTL, expiry, closed with data, custom headers.
	p2 := newPath()
	ok(t, s.do(map[string]any{"type": "create", "path": p2, "ttlSeconds": 3600, "headers": map[string]any{"X-Custom": "v"}}), "create")
	require.Equal(t, "v", e.requests(p2)[0].Header.Get("X-Custom"))
	head := ok(t, s.do(map[string]any{"type": "head", "path": p2}), "head")
	require.EqualValues(t, 3600, head["ttlSeconds"])
	require.Equal(t, "application/octet-stream", head["contentType"])

	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	p3 := newPath()
	ok(t, s.do(map[string]any{"type": "create", "path": p3, "expiresAt": exp.Format(time.RFC3339)}), "create")
	head = ok(t, s.do(map[string]any{"type": "head", "path": p3}), "head")
	got, err := time.Parse(time.RFC3339Nano, head["expiresAt"].(string))
	require.NoError(t, err)
	require.True(t, got.Equal(exp), "%v != %v", got, exp)

	p4 := newPath()
	ok(t, s.do(map[string]any{"type": "create", "path": p4, "contentType": "text/plain", "closed": true, "data": "all"}), "create")
	read := ok(t, s.do(map[string]any{"type": "read", "path": p4}), "read")
	require.Equal(t, "all", data(read))
	require.Equal(t, true, read["streamClosed"])
}

func TestConnectHeadDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)
	p := s.create("text/plain; charset=utf-8")
	off := s.appendData(p, "abc")

	res := ok(t, s.do(map[string]any{"type": "connect", "path": p}), "connect")
	require.EqualValues(t, 200, res["status"])
	require.Equal(t, off, res["offset"])
	fails(t, s.do(map[string]any{"type": "connect", "path": "/missing-c"}), "connect", codeNotFound, 404)

	res = ok(t, s.do(map[string]any{"type": "head", "path": p, "headers": map[string]any{"X-Trace-Id": "t1"}}), "head")
	require.Equal(t, off, res["offset"])
	require.Equal(t, "text/plain; charset=utf-8", res["contentType"])
	require.Equal(t, false, res["streamClosed"])
	require.Nil(t, res["ttlSeconds"])
	reqs := e.requests(p)
	require.Equal(t, "t1", reqs[len(reqs)-1].Header.Get("X-Trace-Id"))
	res = fails(t, s.do(map[string]any{"type": "head", "path": "/missing-head"}), "head", codeNotFound, 404)
	require.Contains(t, res["message"], "missing-head")

	res = ok(t, s.do(map[string]any{"type": "delete", "path": p, "headers": map[string]any{"Authorization": "Bearer d"}}), "delete")
	require.EqualValues(t, 200, res["status"])
	fails(t, s.do(map[string]any{"type": "head", "path": p}), "head", codeNotFound, 404)
	fails(t, s.do(map[string]any{"type": "delete", "path": p}), "delete", codeNotFound, 404)
}

func TestAppend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)
	p := s.create("application/octet-stream")

	res := ok(t, s.do(map[string]any{"type": "append", "path": p, "data": "hello", "headers": map[string]any{"X-Request-Id": "r1"}}), "append")
	require.EqualValues(t, 200, res["status"])
	require.NotEmpty(t, res["offset"])
	require.Nil(t, res["headersSent"], "no dynamic headers set")
	reqs := e.requests(p)
	require.Equal(t, "r1", reqs[len(reqs)-1].Header.Get("X-Request-Id"))
	ok(t, s.do(map[string]any{"type": "append", "path": p, "data": base64.StdEncoding.EncodeToString([]byte{0, 0xff, 1}), "binary": true}), "append")
	read := ok(t, s.do(map[string]any{"type": "read", "path": p}), "read")
	chunks := read["chunks"].([]any)
	require.Len(t, chunks, 1)
	require.Equal(t, true, chunks[0].(map[string]any)["binary"], "bytes that are not UTF-8 travel as base64")
	b, err := base64.StdEncoding.DecodeString(data(read))
	require.NoError(t, err)
	require.Equal(t, append([]byte("hello"), 0, 0xff, 1), b)
	fails(t, s.do(map[string]any{"type": "append", "path": p, "data": "%%%", "binary": true}), "append", codeInvalidArgument, 0)

	// Stream-Seq must grow.
	q := s.create("text/plain")
	ok(t, s.do(map[string]any{"type": "append", "path": q, "data": "a", "seq": 2}), "append")
	fails(t, s.do(map[string]any{"type": "append", "path": q, "data": "b", "seq": 1}), "append", codeSeqConflict, 409)

	// Producer headers: duplicate, stale epoch, sequence gap.
	res = ok(t, s.do(map[string]any{"type": "append", "path": q, "data": "c", "producerId": "w", "producerEpoch": 1, "producerSeq": 0}), "append")
	require.Equal(t, false, res["duplicate"])
	require.EqualValues(t, 1, res["producerEpoch"])
	require.EqualValues(t, 0, res["producerSeq"])
	res = ok(t, s.do(map[string]any{"type": "append", "path": q, "data": "c", "producerId": "w", "producerEpoch": 1, "producerSeq": 0}), "append")
	require.EqualValues(t, 204, res["status"])
	require.Equal(t, true, res["duplicate"])
	res = fails(t, s.do(map[string]any{"type": "append", "path": q, "data": "d", "producerId": "w", "producerEpoch": 0, "producerSeq": 0}), "append", codeUnexpected, 403)
	require.EqualValues(t, 1, res["details"].(map[string]any)["producerEpoch"])
	res = fails(t, s.do(map[string]any{"type": "append", "path": q, "data": "d", "producerId": "w", "producerEpoch": 1, "producerSeq": 5}), "append", codeSeqConflict, 409)
	require.EqualValues(t, 1, res["details"].(map[string]any)["producerExpectedSeq"])
	require.EqualValues(t, 5, res["details"].(map[string]any)["producerReceivedSeq"])

	// Missing stream: the path is in the message.
	res = fails(t, s.do(map[string]any{"type": "append", "path": "/append-missing", "data": "x"}), "append", codeNotFound, 404)
	require.Contains(t, res["message"], "append-missing")

	// Closed stream; wrong content type.
	ok(t, s.do(map[string]any{"type": "close", "path": q}), "close")
	fails(t, s.do(map[string]any{"type": "append", "path": q, "data": "late"}), "append", codeStreamClosed, 409)
	j := s.create("application/json")
	ok(t, s.do(map[string]any{"type": "append", "path": j, "data": `{"a": 1}`}), "append")
	direct, err := e.direct.Create(context.Background(), e.url+"/direct-json", durable.CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	require.True(t, direct.Created)
	// Not created through the adapter: its content type is asked for (HEAD).
	ok(t, s.do(map[string]any{"type": "append", "path": "/direct-json", "data": `[1,2]`}), "append")
	read = ok(t, s.do(map[string]any{"type": "read", "path": "/direct-json"}), "read")
	require.Equal(t, "[1,2]", data(read))
}

func TestClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)
	p := s.create("text/plain")
	s.appendData(p, "a")
	res := ok(t, s.do(map[string]any{"type": "close", "path": p, "data": "z"}), "close")
	final := res["finalOffset"].(string)
	head := ok(t, s.do(map[string]any{"type": "head", "path": p}), "head")
	require.Equal(t, final, head["offset"])
	require.Equal(t, true, head["streamClosed"])
	res = ok(t, s.do(map[string]any{"type": "close", "path": p}), "close")
	require.Equal(t, final, res["finalOffset"], "closing again without data is idempotent")
	fails(t, s.do(map[string]any{"type": "close", "path": p, "data": "more"}), "close", codeStreamClosed, 409)
	fails(t, s.do(map[string]any{"type": "close", "path": "/close-missing"}), "close", codeNotFound, 404)

	q := s.create("application/json")
	res = ok(t, s.do(map[string]any{"type": "server-close", "path": q, "streamClosed": true, "data": `{"end":true}`, "contentType": "application/json"}), "close")
	require.NotEmpty(t, res["finalOffset"])
	read := ok(t, s.do(map[string]any{"type": "read", "path": q}), "read")
	require.Equal(t, `[{"end":true}]`, data(read))
	require.Equal(t, true, read["streamClosed"])
}

func TestReadCatchUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)
	p := s.create("text/plain")
	o1 := s.appendData(p, "one")
	o2 := s.appendData(p, "two")

	res := ok(t, s.do(map[string]any{"type": "read", "path": p, "live": false}), "read")
	require.EqualValues(t, 200, res["status"])
	require.Equal(t, "onetwo", data(res))
	require.Equal(t, o2, res["offset"])
	require.Equal(t, true, res["upToDate"])
	require.Equal(t, false, res["streamClosed"])
	require.Equal(t, o2, res["chunks"].([]any)[0].(map[string]any)["offset"])

	res = ok(t, s.do(map[string]any{"type": "read", "path": p, "offset": o1}), "read")
	require.Equal(t, "two", data(res))
	res = ok(t, s.do(map[string]any{"type": "read", "path": p, "offset": "now"}), "read")
	require.Equal(t, 0, chunkCount(res))
	require.Equal(t, o2, res["offset"], "now resolves to the tail")
	require.Equal(t, true, res["upToDate"])

	res = fails(t, s.do(map[string]any{"type": "read", "path": p, "offset": "not-a-valid-offset-format"}), "read", codeInvalidOffset, 0)
	require.Contains(t, res["message"], p)
	res = fails(t, s.do(map[string]any{"type": "read", "path": "/read-missing", "live": false}), "read", codeNotFound, 404)
	require.Contains(t, res["message"], "read-missing")
	fails(t, s.do(map[string]any{"type": "read", "path": p, "live": "sometimes"}), "read", codeInvalidArgument, 0)

	// JSON: one chunk per response, compact, as an array.
	j := s.create("application/json")
	ok(t, s.do(map[string]any{"type": "append", "path": j, "data": `{"message": "hello"}`}), "append")
	ok(t, s.do(map[string]any{"type": "append", "path": j, "data": `[{"n": 1}, {"n": 2}]`}), "append")
	res = ok(t, s.do(map[string]any{"type": "read", "path": j}), "read")
	require.Equal(t, `[{"message":"hello"},{"n":1},{"n":2}]`, data(res))

	// A body that is cut short is a parse error; the next read works.
	e.corrupt.Store(1)
	fails(t, s.do(map[string]any{"type": "read", "path": j}), "read", codeParse, 0)
	ok(t, s.do(map[string]any{"type": "read", "path": j}), "read")

	// A transient 503 is retried.
	e.srv.InjectFault(testserverFault(strings.TrimPrefix(p, "/"), http.MethodGet, 503, 1))
	res = ok(t, s.do(map[string]any{"type": "read", "path": p}), "read")
	require.Equal(t, "onetwo", data(res))

	// maxChunks.
	res = ok(t, s.do(map[string]any{"type": "read", "path": p, "maxChunks": 1}), "read")
	require.Equal(t, 1, chunkCount(res))
}

func TestNetworkError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	s := startSession(t)
	ok(t, s.do(map[string]any{"type": "init", "serverUrl": "http://" + addr}), "init")
	start := time.Now()
	fails(t, s.do(map[string]any{"type": "head", "path": "/x"}), "head", codeNetwork, 0)
	fails(t, s.do(map[string]any{"type": "append", "path": "/x", "data": "d"}), "append", codeNetwork, 0)
	fails(t, s.do(map[string]any{"type": "read", "path": "/x", "live": false}), "read", codeNetwork, 0)
	require.Less(t, time.Since(start), 25*time.Second)
}
