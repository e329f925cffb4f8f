package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

// streamContent reads a whole stream with catch-up reads: the raw bytes of a
// byte stream, or the messages of a JSON stream re-encoded one per line.
func streamContent(t *testing.T, srv *testserver.Server, name string) string {
	t.Helper()
	s, err := readStream(srv, name)
	require.NoError(t, err)
	return s
}

// readStream is streamContent without a testing.T, for conditions polled in
// another goroutine.
func readStream(srv *testserver.Server, name string) (string, error) {
	ctx := context.Background()
	cl, err := durable.NewClient(srv.URL() + defaultStreamPrefix)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	off := durable.OffsetStart
	for {
		ch, err := cl.Read(ctx, name, durable.ReadOptions{Offset: off})
		if err != nil {
			return "", err
		}
		if isJSONType(ch.ContentType) {
			var msgs []json.RawMessage
			if err := json.Unmarshal(ch.Data, &msgs); err != nil {
				return "", err
			}
			for _, m := range msgs {
				out.Write(m)
				out.WriteByte('\n')
			}
		} else {
			out.Write(ch.Data)
		}
		off = ch.NextOffset
		if ch.UpToDate || ch.Closed {
			return out.String(), nil
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	promises := map[string][]string{
		"create": {"--ttl", "--expires-at", "--closed", "--data", "exists"},
		"append": {"--json", "--producer-id", "--linger", "--max-batch-bytes", "--max-in-flight", "not retried", "stored twice"},
		"tail":   {"--from", "--offset-file", "--key", "--live", "--until-eof", "--output", "at-least-once", "at most the last", "exactly once", "SIGKILL", "terminal"},
		"head":   {"next-offset", "--json"},
		"close":  {"EOF", "DATA"},
		"delete": {"DELETE"},
		"serve":  {"--addr", "--data-dir", "development and tests", "not a production server", "Caddy"},
	}
	for name, want := range promises {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, form := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
				r := cli{}.run(t, form...)
				assert.Equal(t, 0, r.code, "%v", form)
				assert.Empty(t, r.stdout, "help goes to stderr")
				for _, w := range want {
					assert.Contains(t, r.stderr, w, "%v", form)
				}
			}
			if name != "serve" {
				r := cli{}.run(t, name, "--help")
				assert.Contains(t, r.stderr, "usage: durable "+name)
				assert.Contains(t, r.stderr, "$DURABLE_TOKEN")
			}
		})
	}
	t.Run("top", func(t *testing.T) {
		t.Parallel()
		r := cli{}.run(t, "--help")
		assert.Equal(t, 0, r.code)
		for _, c := range []string{"create", "append", "tail", "head", "close", "delete", "serve", "version", "Exit codes"} {
			assert.Contains(t, r.stderr, c)
		}
		r = cli{}.run(t)
		assert.Equal(t, 2, r.code, "no command is a usage error")
	})
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := withServer(srv)
	tests := []struct {
		name string
		c    cli
		args []string
		want string
	}{
		{"unknown command", c, []string{"frobnicate"}, "unknown command"},
		{"unknown flag", c, []string{"head", "s", "--nope"}, "unknown flag --nope"},
		{"create no stream", c, []string{"create"}, "want exactly one STREAM"},
		{"create two streams", c, []string{"create", "a", "b"}, "want exactly one STREAM"},
		{"path without server", cli{}, []string{"head", "orders"}, "DURABLE_SERVER"},
		{"bad server", cli{env: []string{envServer + "=ftp://x"}}, []string{"head", "orders"}, "http(s)"},
		{"bad header", c, []string{"head", "s", "--header", "NoColon"}, "Name: value"},
		{"bad ttl", c, []string{"create", "s", "--ttl", "soon"}, "--ttl"},
		{"fractional ttl", c, []string{"create", "s", "--ttl", "1.5s"}, "whole seconds"},
		{"ttl and expires", c, []string{"create", "s", "--ttl", "1h", "--expires-at", "2030-01-01T00:00:00Z"}, "mutually exclusive"},
		{"bad expires", c, []string{"create", "s", "--expires-at", "tomorrow"}, "RFC 3339"},
		{"json and content type", c, []string{"create", "s", "--json", "--content-type", "text/plain"}, "disagree"},
		{"create bad json data", c, []string{"create", "s", "--json", "--data", "{"}, "not valid JSON"},
		{"append no stream", c, []string{"append"}, "missing STREAM"},
		{"append linger without producer", c, []string{"append", "s", "x", "--linger", "1s"}, "needs --producer-id"},
		{"append bad json arg", c, []string{"append", "s", "--json", "{"}, "DATA argument 1 is not one JSON value (unexpected end of JSON input)"},
		{"append text as json", c, []string{"append", "s", "--json", "hello world"}, `DATA argument 1 is not one JSON value (invalid character 'h' looking for beginning of value); a JSON stream takes one JSON value per argument (text is a JSON string: '"hello world"'). Nothing was appended`},
		{"append stream with args", c, []string{"append", "s", "--stream", "1"}, "not with DATA"},
		{"append zero batch", c, []string{"append", "s", "x", "--max-batch-bytes", "0"}, "positive"},
		{"close too many", c, []string{"close", "s", "a", "b"}, "STREAM [DATA]"},
		{"delete none", c, []string{"delete"}, "want exactly one STREAM"},
		{"dot segment", c, []string{"head", "a/../b"}, `".."`},
		{"negative timeout", c, []string{"head", "s", "--timeout", "-1s"}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.c.run(t, tt.args...)
			assert.Equal(t, 2, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, tt.want)
			assert.Empty(t, r.stdout)
		})
	}
	assert.Zero(t, srv.Requests("", ""), "a usage error sends no request")
}

// TestFlagErrors: a flag error is one line saying what is wrong plus a
// pointer to --help, never the whole usage; values are explained.
func TestFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"tail", "ev", "--from"}, "durable tail: --from needs a value"},
		{[]string{"tail", "ev", "--header", "X-Foo", "--server", "http://127.0.0.1:1"}, `durable tail: --header "X-Foo": want 'Name: value'`},
		{[]string{"tail", "ev", "--header", "Authorization: Bearer s3cret\x01", "--server", "http://127.0.0.1:1"}, `durable tail: --header "Authorization": control character in the value`},
		{[]string{"tail", "ev", "--timeout", "1"}, `durable tail: --timeout "1": want a duration with a unit, such as 1s, 500ms, 2m or 1h`},
		{[]string{"append", "ev", "--json=maybe"}, `durable append: --json "maybe": want true or false`},
		{[]string{"append", "ev", "--max-batch-bytes", "1k"}, `durable append: --max-batch-bytes "1k": want a whole number`},
		{[]string{"head", "--nope", "ev"}, "durable head: unknown flag --nope"},
		{[]string{"serve", "--long-poll-timeout", "30"}, `durable serve: --long-poll-timeout "30": want a duration with a unit, such as 1s, 500ms, 2m or 1h`},
	} {
		r := cli{}.run(t, tt.args...)
		assert.Equal(t, 2, r.code, "%v", tt.args)
		cmd := tt.args[0]
		assert.Equal(t, tt.want+"\nrun 'durable "+cmd+" --help' for usage\n", r.stderr, "%v", tt.args)
	}
	r := cli{}.run(t, "tail", "--help")
	assert.Contains(t, r.stderr, "\n  --from string\n")
	assert.Contains(t, r.stderr, "\n  --header 'Name: value'\n")
	assert.Contains(t, r.stderr, "\n  --until-eof\n")
	assert.NotContains(t, r.stderr, "\n  -from")
}

// TestCommandWord: flags may come before the command as they may after it,
// and a missing or unknown command is one line with the commands and a
// pointer to --help, not the whole usage.
func TestCommandWord(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	cli{}.ok(t, "--server", srv.URL(), "create", "s", "--json")
	r := cli{}.ok(t, "--server="+srv.URL(), "--json", "append", "s", "1")
	assert.NotEmpty(t, r.stdout)
	assert.Equal(t, 1, srv.Requests("s", http.MethodPost))

	const commands = "(the commands: append, close, create, delete, head, serve, sub, tail, version)\nrun 'durable --help' for usage\n"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate", "s"}, `durable: unknown command "frobnicate" ` + commands},
		{[]string{"--server", srv.URL()}, "durable: no command " + commands},
		{[]string{"--server", srv.URL(), "--", "tail"}, "durable: no command " + commands},
	} {
		r := cli{}.run(t, tt.args...)
		assert.Equal(t, 2, r.code, "%v", tt.args)
		assert.Equal(t, tt.want, r.stderr, "%v", tt.args)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := cli{}.ok(t, args...)
		assert.True(t, strings.HasPrefix(r.stdout, "durable github.com/durablego/durable "), r.stdout)
		assert.Contains(t, r.stdout, " "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n")
	}
	r := cli{}.run(t, "version", "extra")
	assert.Equal(t, 2, r.code)
}

func TestCreate(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := withServer(srv)
	ctx := context.Background()
	cl, err := durable.NewClient(srv.URL() + defaultStreamPrefix)
	require.NoError(t, err)

	t.Run("plain", func(t *testing.T) {
		r := c.ok(t, "create", "plain")
		assert.Contains(t, r.stderr, "created")
		assert.NotEmpty(t, strings.TrimSpace(r.stdout), "prints the next offset")
		info, err := cl.Head(ctx, "plain")
		require.NoError(t, err)
		assert.Equal(t, "application/octet-stream", info.ContentType)
		assert.Equal(t, strings.TrimSpace(r.stdout), string(info.NextOffset))
	})
	t.Run("identical again", func(t *testing.T) {
		r := c.ok(t, "create", "plain")
		assert.Contains(t, r.stderr, "exists")
	})
	t.Run("different config", func(t *testing.T) {
		r := c.run(t, "create", "plain", "--json")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "already exists with content type application/octet-stream (asked: application/json)")
		r = c.run(t, "create", "plain", "--ttl", "10")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "already exists with ttl none (asked: 10s);")
	})
	t.Run("json ttl data flags after and before", func(t *testing.T) {
		c.ok(t, "create", "--json", "j", "--ttl", "3600", "--data", `[{"a":1},{"b":2}]`)
		info, err := cl.Head(ctx, "j")
		require.NoError(t, err)
		assert.Equal(t, "application/json", info.ContentType)
		assert.Equal(t, time.Hour, info.TTL)
		assert.Equal(t, "{\"a\":1}\n{\"b\":2}\n", streamContent(t, srv, "j"))
	})
	t.Run("expires closed", func(t *testing.T) {
		at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		c.ok(t, "create", "e", "--content-type", "text/plain", "--expires-at", at.Format(time.RFC3339), "--closed", "--data", "all")
		info, err := cl.Head(ctx, "e")
		require.NoError(t, err)
		assert.True(t, info.Closed)
		assert.True(t, at.Equal(info.ExpiresAt), "%v vs %v", at, info.ExpiresAt)
		assert.Equal(t, "all", streamContent(t, srv, "e"))
	})
	t.Run("full URL", func(t *testing.T) {
		r := cli{}.ok(t, "create", srv.StreamURL("full/url"))
		assert.Contains(t, r.stderr, srv.StreamURL("full/url"))
	})
	t.Run("server flag and root path", func(t *testing.T) {
		cli{}.ok(t, "create", "/v1/stream/rooted", "--server", srv.URL())
		_, err := cl.Head(ctx, "rooted")
		require.NoError(t, err)
	})
	t.Run("unreachable", func(t *testing.T) {
		r := cli{}.run(t, "create", "http://127.0.0.1:1/v1/stream/x", "--timeout", "2s")
		assert.Equal(t, 1, r.code)
		assert.NotEmpty(t, r.stderr)
	})
}

func TestAppend(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := withServer(srv)
	c.ok(t, "create", "bytes", "--content-type", "text/plain")
	c.ok(t, "create", "json", "--json")

	tests := []struct {
		name   string
		stream string
		stdin  string
		args   []string
		want   string // stream content after
		code   int
		errHas string
	}{
		{"bytes args", "bytes", "", []string{"a", "b\n"}, "ab\n", 0, ""},
		{"bytes stdin", "bytes", "line 1\nline 2\n", nil, "ab\nline 1\nline 2\n", 0, ""},
		{"json args learnt from stream", "json", "", []string{`{"a":1}`, `[1,2]`}, "{\"a\":1}\n[1,2]\n", 0, ""},
		{"json stdin skips blank lines", "json", "{\"b\":2}\n\n  \n\"s\"\r\n3", []string{"--json"}, "{\"a\":1}\n[1,2]\n{\"b\":2}\n\"s\"\n3\n", 0, ""},
		{"json bad line sends nothing", "json", "4\n{oops\n5\n", nil, "{\"a\":1}\n[1,2]\n{\"b\":2}\n\"s\"\n3\n", 2, "stdin line 2 is not one JSON value (invalid character 'o' looking for beginning of object key string); a JSON stream takes one JSON value per line. Nothing was appended"},
		{"json bad argument sends nothing", "json", "", []string{"4", "{oops"}, "{\"a\":1}\n[1,2]\n{\"b\":2}\n\"s\"\n3\n", 2, "DATA argument 2 is not one JSON value"},
		{"json bad line with --stream keeps earlier", "json", "4\n\n{oops\n5\n", []string{"--stream"}, "{\"a\":1}\n[1,2]\n{\"b\":2}\n\"s\"\n3\n4\n", 2, "stdin line 3 is not one JSON value (invalid character 'o' looking for beginning of object key string); append takes one JSON value per line. The lines before it were appended (1 message): fix line 3, then send the input again from it"},
		{"json line too long", "json", `"` + strings.Repeat("x", 100) + `"` + "\n", []string{"--max-batch-bytes", "50"}, "{\"a\":1}\n[1,2]\n{\"b\":2}\n\"s\"\n3\n4\n", 2, "stdin line 1 is longer than --max-batch-bytes; nothing was appended"},
		{"stdin over --max-input", "json", "5\n6\n", []string{"--max-input", "3"}, "{\"a\":1}\n[1,2]\n{\"b\":2}\n\"s\"\n3\n4\n", 2, "stdin holds more than 3 bytes (--max-input); nothing was appended"},
		{"content type mismatch", "bytes", "", []string{"--content-type", "application/json", "1"}, "ab\nline 1\nline 2\n", 1, srv.StreamURL("bytes") + ": content type does not match the stream's: sent application/json, the stream's is text/plain (HTTP 409) (nothing was appended); without --content-type (or --json) the data is sent as the stream's type\n"},
		{"missing stream", "nope", "", []string{"x"}, "", 1, "404"},
		{"nothing to append", "bytes", "", nil, "ab\nline 1\nline 2\n", 0, "nothing to append"},
	}
	for _, tt := range tests { // sequential: each builds on the stream content
		t.Run(tt.name, func(t *testing.T) {
			r := c.withStdin(tt.stdin).run(t, append([]string{"append", tt.stream}, tt.args...)...)
			assert.Equal(t, tt.code, r.code, "stderr: %s", r.stderr)
			if tt.errHas != "" {
				assert.Contains(t, r.stderr, tt.errHas)
			}
			if tt.stream != "nope" {
				assert.Equal(t, tt.want, streamContent(t, srv, tt.stream))
			}
		})
	}

	t.Run("many lines batch into few requests", func(t *testing.T) {
		c.ok(t, "create", "many", "--json")
		var in strings.Builder
		var want strings.Builder
		for i := range 2000 {
			in.WriteString(`{"i":` + itoa(i) + "}\n")
			want.WriteString(`{"i":` + itoa(i) + "}\n")
		}
		srv.ResetRequests()
		r := c.withStdin(in.String()).ok(t, "append", "many", "--max-batch-bytes", "4096")
		assert.NotEmpty(t, r.stdout)
		assert.Equal(t, want.String(), streamContent(t, srv, "many"))
		posts := srv.Requests("many", http.MethodPost)
		assert.Less(t, posts, 200, "lines are batched")
		assert.GreaterOrEqual(t, posts, 2000*10/4096, "batches respect --max-batch-bytes")
	})
	t.Run("closed stream", func(t *testing.T) {
		c.ok(t, "create", "shut", "--closed")
		r := c.run(t, "append", "shut", "x")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "closed")
	})
	t.Run("plain append not retried after 503", func(t *testing.T) {
		c.ok(t, "create", "flaky", "--content-type", "text/plain")
		srv.InjectFault(testserver.Fault{Path: "flaky", Method: http.MethodPost, Status: 503, AfterApply: true, Count: 1})
		r := c.run(t, "append", "flaky", "once")
		assert.Equal(t, 1, r.code)
		assert.Equal(t, "once", streamContent(t, srv, "flaky"), "applied once, never twice")
	})
}

func TestHeadCloseDelete(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := withServer(srv)
	c.ok(t, "create", "s", "--json", "--ttl", "1h")
	c.ok(t, "append", "s", "1")

	r := c.ok(t, "head", "s")
	assert.Contains(t, r.stdout, "content-type: application/json\n")
	assert.Contains(t, r.stdout, "closed: false\n")
	assert.Contains(t, r.stdout, "ttl: 3600s\n")
	assert.Contains(t, r.stdout, "url: "+srv.StreamURL("s")+"\n")

	r = c.ok(t, "head", "--json", "s")
	var h headJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &h))
	assert.Equal(t, headJSON{URL: srv.StreamURL("s"), ContentType: "application/json", NextOffset: h.NextOffset, TTLSeconds: 3600}, h)

	r = c.ok(t, "close", "s", `{"last":true}`)
	final := strings.TrimSpace(r.stdout)
	assert.Equal(t, "1\n{\"last\":true}\n", streamContent(t, srv, "s"))
	r = c.ok(t, "head", "s", "--json")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &h))
	assert.True(t, h.Closed)
	assert.Equal(t, final, h.NextOffset)

	c.ok(t, "close", "s") // idempotent without data
	r = c.run(t, "close", "s", "2")
	assert.Equal(t, 1, r.code, "data on a closed stream")

	c.ok(t, "create", "arr", "--json")
	c.ok(t, "close", "arr", "[1,2]")
	assert.Equal(t, "[1,2]\n", streamContent(t, srv, "arr"), "close DATA is one message")
	r = c.run(t, "close", "arr2", "{")
	assert.Equal(t, 1, r.code, "HEAD of a missing stream")

	r = c.ok(t, "delete", "s")
	assert.Contains(t, r.stderr, "deleted")
	for _, cmd := range []string{"head", "delete", "close"} {
		r = c.run(t, cmd, "s")
		assert.Equal(t, 1, r.code, cmd)
		assert.Contains(t, r.stderr, "404", cmd)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	const token = "s3cret"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token || r.Header.Get("X-Tenant") != "acme" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	defer ts.Close()

	good := cli{env: []string{envServer + "=" + ts.URL, envToken + "=" + token}}
	good.ok(t, "create", "a", "--header", "X-Tenant: acme")
	good.ok(t, "head", "--header", "x-tenant:acme", "a")
	r := good.run(t, "head", "a")
	assert.Equal(t, 1, r.code, "missing header")
	assert.Contains(t, r.stderr, "401")
	r = cli{env: []string{envServer + "=" + ts.URL}}.run(t, "head", "a", "--header", "X-Tenant: acme")
	assert.Equal(t, 1, r.code, "missing token")
	// An explicit Authorization header wins over $DURABLE_TOKEN.
	r = good.run(t, "head", "a", "--header", "X-Tenant: acme", "--header", "Authorization: Bearer wrong")
	assert.Equal(t, 1, r.code)
	cli{env: []string{envServer + "=" + ts.URL, envToken + "=wrong"}}.ok(t, "head", "a", "--header", "X-Tenant: acme", "--header", "Authorization: Bearer "+token)
	assert.NotContains(t, r.stderr, token, "no secret in errors")
}

func itoa(i int) string { return fmtInt(i) }
