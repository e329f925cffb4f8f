package durable

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/secrettest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logLines returns the lines of out that hold every one of parts.
func logLines(out string, parts ...string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		keep := l != ""
		for _, p := range parts {
			keep = keep && strings.Contains(l, p)
		}
		if keep {
			lines = append(lines, l)
		}
	}
	return lines
}

// waitLog waits until the log holds at least n lines with every one of
// parts.
func waitLog(t *testing.T, e *relEnv, n int, parts ...string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(logLines(e.log.String(), parts...)) >= n },
		20*time.Second, time.Millisecond, "%d lines with %q\n%s", n, parts, e.log.String())
}

// TestLogOutage: what the Client's logger says of an outage that a Writer
// and then a Reader ride out (the server unreachable through the fault
// proxy, then back), and of a fenced Writer: for each outage one line at
// Warn when it starts and one at Info when it ends, every further attempt
// at Debug only; each request at Debug; the fenced Writer's lost batch at
// Error; nothing else above Debug; no credential in any line and every URL
// redacted.
func TestLogOutage(t *testing.T) {
	t.Parallel()
	e := newRelEnv(t, false, true)
	ctx := ctxT(t, 60*time.Second)
	c := e.client(e.viaProxy(), WithRetry(relPolicy(0)))
	stream := e.stream(e.viaProxy(), "s")
	_, err := e.direct.Create(ctx, "s", CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	srv := e.server()
	failures := func(op string) int { return len(logLines(e.log.String(), `msg="durable: retrying" op=`+op+" ")) }

	// The Writer: a batch lands, the next one meets the outage.
	w, err := NewWriter(c, stream, JSONCodec[event]{}, WithProducerID("p"), WithLinger(0), WithRetry(relPolicy(0)))
	require.NoError(t, err)
	_, err = w.WriteSync(ctx, event{N: 0})
	require.NoError(t, err)
	e.proxy.SetRefuse(true)
	e.proxy.CutAll()
	wrote := make(chan error, 1)
	go func() {
		_, err := w.WriteSync(ctx, event{N: 1})
		wrote <- err
	}()
	waitLog(t, e, 3, `msg="durable: retrying" op=write `)
	e.proxy.SetRefuse(false)
	require.NoError(t, <-wrote)
	writeFailures := failures("write")

	// The Reader: at the tail in a long-poll when the outage starts.
	r, err := NewReader(c, stream, JSONCodec[event]{}, WithLive(LiveLongPoll), WithRetry(relPolicy(0)), WithManualCommit())
	require.NoError(t, err)
	defer r.Close(context.Background())
	for i := range 2 {
		m, err := r.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, i, m.Value.N)
	}
	gets := srv.Requests("s", http.MethodGet)
	next := make(chan Message[event], 1)
	go func() {
		m, err := r.Next(ctx)
		assert.NoError(t, err)
		next <- m
	}()
	// The long-poll has reached the server: cut it, refuse the retries.
	require.Eventually(t, func() bool { return srv.Requests("s", http.MethodGet) > gets }, 20*time.Second, time.Millisecond)
	e.proxy.SetRefuse(true)
	e.proxy.CutAll()
	waitLog(t, e, 3, `msg="durable: retrying" op=read `)
	e.proxy.SetRefuse(false)
	posts := srv.Requests("s", http.MethodPost) // the Writer's, so far
	_, err = e.directAppend(ctx, "s", 0, []byte(`{"n":2}`))
	require.NoError(t, err)
	require.Equal(t, 2, (<-next).Value.N)
	require.NoError(t, r.Close(ctx))

	// The Writer fenced by a newer epoch: its batch is lost.
	newer, err := NewWriter(e.direct, "s", JSONCodec[event]{}, WithProducerID("p"), WithEpoch(1), WithLinger(0))
	require.NoError(t, err)
	_, err = newer.WriteSync(ctx, event{N: 3})
	require.NoError(t, err)
	require.NoError(t, newer.Close(ctx))
	before := srv.Requests("s", http.MethodPost)
	_, err = w.WriteSync(ctx, event{N: 4})
	require.ErrorIs(t, err, ErrStaleEpoch)
	require.Error(t, w.Close(ctx))
	posts += srv.Requests("s", http.MethodPost) - before

	out := e.log.String()
	// The outages, per operation.
	for op, n := range map[string]int{"write": writeFailures, "read": failures("read")} {
		require.GreaterOrEqual(t, n, 3, op)
		require.Len(t, logLines(out, `level=WARN msg="durable: retrying" op=`+op+" ", "attempt=1 "), 1, "%s: one Warn as the outage starts\n%s", op, out)
		require.Len(t, logLines(out, `level=DEBUG msg="durable: retrying" op=`+op+" "), n-1, "%s: each further attempt at Debug", op)
		require.Len(t, logLines(out, `level=INFO msg="durable: recovered" op=`+op+" ", fmt.Sprintf("failures=%d ", n)), 1,
			"%s: one Info as it ends, with the failures it had", op)
	}
	// Nothing else above Debug but the fenced Writer's Error.
	require.Len(t, logLines(out, "level=WARN"), 2, out)
	require.Len(t, logLines(out, "level=INFO"), 2, out)
	require.Equal(t, []string{`msg="durable: writer fenced by a newer producer epoch; its batch is lost"`},
		regexp.MustCompile(`msg="[^"]*"`).FindAllString(strings.Join(logLines(out, "level=ERROR"), "\n"), -1))
	require.Len(t, logLines(out, "level=ERROR", "producer=p server_epoch=1"), 1)

	// Each request of the Writer at Debug: those the server answered,
	// and those the outage refused (each one retried).
	viaProxy := `url="http://REDACTED@` + e.proxy.Addr() + "/"
	require.Len(t, logLines(out, `msg="durable: request" op=write method=POST`, viaProxy, "status=0 "), writeFailures)
	require.Len(t, logLines(out, `msg="durable: request" op=write method=POST`, viaProxy), posts+writeFailures)
	require.NotEmpty(t, logLines(out, `msg="durable: request" op=read method=GET`, viaProxy, "status=200 "))

	// No credential; every URL redacted: no userinfo, the secret query
	// parameters' values replaced.
	require.Empty(t, secrettest.Find(out))
	urls := 0
	for _, m := range regexp.MustCompile(`url=("[^"]*"|\S*)`).FindAllStringSubmatch(out, -1) {
		u, err := url.Parse(strings.Trim(m[1], `"`))
		require.NoError(t, err, m[0])
		if u.Host != e.proxy.Addr() {
			continue // the direct client's (without the secrets of the stream URL)
		}
		urls++
		require.Equal(t, "REDACTED", u.User.String(), m[0])
		if q := u.Query(); q.Has("token") || q.Has("api_key") {
			require.Equal(t, []string{"REDACTED"}, q["token"], m[0])
			require.Equal(t, []string{"REDACTED"}, q["api_key"], m[0])
		}
	}
	require.Positive(t, urls)
}
