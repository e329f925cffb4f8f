package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

func subServer(t *testing.T) cli {
	t.Helper()
	c, _ := subServerClient(t)
	return c
}

// subServerClient is subServer with a Client of the server, for the
// writes around the processes under test.
func subServerClient(t *testing.T) (cli, *durable.Client) {
	t.Helper()
	srv := newServer(t, testserver.WithSubscriptions(true))
	cl, err := durable.NewClient(srv.URL() + "/v1/stream/")
	require.NoError(t, err)
	t.Cleanup(cl.CloseIdleConnections)
	return withServer(srv), cl
}

func TestSubManage(t *testing.T) {
	t.Parallel()
	c := subServer(t)
	c.ok(t, "create", "jobs/a", "--content-type", "application/json")
	r := c.ok(t, "sub", "create", "jobs", "--pattern", "jobs/*", "--lease-ttl", "5s", "--description", "job runner")
	assert.Contains(t, r.stderr, "created subscription jobs")
	var info map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info), r.stdout)
	assert.Equal(t, "pull-wake", info["type"])
	assert.Equal(t, "wake/jobs", info["wake_stream"])
	assert.EqualValues(t, 5000, info["lease_ttl_ms"])
	assert.Contains(t, r.stdout, `"path": "jobs/a"`)

	r = c.ok(t, "sub", "create", "jobs", "--pattern", "jobs/*", "--lease-ttl", "5s", "--description", "job runner")
	assert.Contains(t, r.stderr, "exists with this configuration")
	r = c.run(t, "sub", "create", "jobs", "--pattern", "jobs/**")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "subscription exists with a different configuration")

	c.ok(t, "sub", "add", "jobs", "extra/x", "extra/y")
	c.ok(t, "sub", "remove", "jobs", "extra/y")
	r = c.ok(t, "sub", "get", "jobs")
	assert.Contains(t, r.stdout, `"path": "extra/x"`)
	assert.NotContains(t, r.stdout, `extra/y`)
	assert.Contains(t, r.stdout, `"link_type": "explicit"`)

	c.ok(t, "sub", "delete", "jobs")
	r = c.run(t, "sub", "get", "jobs")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "subscription not found")

	for _, args := range [][]string{
		{"sub"}, {"sub", "nope"}, {"sub", "get"}, {"sub", "get", "a", "b"}, {"sub", "add", "jobs"},
		{"sub", "create", "x"}, {"sub", "create", "a/b", "--pattern", "p/*"},
		{"sub", "create", "x", "--pattern", "p/*", "--webhook", "https://example.com/h", "--wake-stream", "w"},
		{"sub", "create", "x", "--pattern", "p/*", "--lease-ttl", "100ms"},
		{"sub", "tail", "x", "--concurrency", "0"},
	} {
		r := c.run(t, args...)
		assert.Equal(t, 2, r.code, "durable %v: %s", args, r.stderr)
	}
	r = c.run(t, "sub", "create", "hook", "--pattern", "p/*", "--webhook", "http://10.0.0.1/h")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "webhook URL rejected")
}

// tailLine is one line of sub tail's output.
type tailLine struct {
	Stream string `json:"stream"`
	Data   struct {
		Stream string `json:"stream"`
		Seq    int    `json:"seq"`
	} `json:"data"`
}

// readTailFile reads the lines of one --output file (a line cut short by
// a SIGKILL cannot happen: lines are written whole, but is refused).
func readTailFile(t *testing.T, path string) []tailLine {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []tailLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l tailLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "line %q of %s", sc.Text(), path)
		require.Equal(t, l.Stream, l.Data.Stream)
		out = append(out, l)
	}
	require.NoError(t, sc.Err())
	return out
}

// TestSubTailProcesses: several "durable sub tail" processes share one
// subscription while streams are written; some are SIGKILLed and
// replaced. Every message ends up in an output file (the order across
// processes is checked by the subscription package's process tests, which
// see the wakes' generations), and once the writers stop and the
// subscription is acked to the tails, the processes exit 0 on SIGTERM.
func TestSubTailProcesses(t *testing.T) {
	t.Parallel()
	c, cl := subServerClient(t)
	ctx := context.Background()
	dir := t.TempDir()
	const streams, perStream = 8, 40
	for i := range streams {
		c.ok(t, "create", fmt.Sprintf("tl/%d", i), "--content-type", "application/json")
	}
	c.ok(t, "sub", "create", "tl", "--pattern", "tl/*", "--lease-ttl", "1s")

	var files []string
	start := func() (*os.Process, func() int) {
		path := filepath.Join(dir, fmt.Sprintf("out-%d.ndjson", len(files)))
		files = append(files, path)
		cmd, _, _ := c.start(t, "sub", "tail", "tl", "--output", path, "--poll", "200ms", "--ack-interval", "50ms",
			"--name", fmt.Sprintf("tail-%d", len(files)))
		return cmd.Process, func() int { return waitCode(t, cmd) }
	}
	type running struct {
		p    *os.Process
		wait func() int
	}
	var live []running
	for range 3 {
		p, w := start()
		live = append(live, running{p, w})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for seq := 1; seq <= perStream; seq++ {
		for i := range streams {
			s := fmt.Sprintf("tl/%d", i)
			_, err := cl.AppendJSON(ctx, s, map[string]any{"stream": s, "seq": seq}, durable.AppendOptions{})
			require.NoError(t, err)
		}
		if seq%5 == 0 {
			victim := rng.IntN(len(live))
			require.NoError(t, live[victim].p.Signal(syscall.SIGKILL))
			assert.Equal(t, -int(syscall.SIGKILL), live[victim].wait())
			kills++
			p, w := start()
			live[victim] = running{p, w}
		}
	}
	// Every message acked: the subscription's offsets reach the tails.
	eventually30(t, func() bool { return subAckedAll(t, c, cl, streams) }, "the subscription was not acked to the tails")
	for _, r := range live {
		require.NoError(t, r.p.Signal(syscall.SIGTERM))
		assert.Equal(t, 0, r.wait(), "SIGTERM: exit 0")
	}

	seen := map[string]map[int]int{}
	lines := 0
	for _, f := range files {
		for _, l := range readTailFile(t, f) {
			lines++
			if seen[l.Stream] == nil {
				seen[l.Stream] = map[int]int{}
			}
			seen[l.Stream][l.Data.Seq]++
		}
	}
	for i := range streams {
		s := fmt.Sprintf("tl/%d", i)
		for seq := 1; seq <= perStream; seq++ {
			assert.Positive(t, seen[s][seq], "stream %s message %d never printed", s, seq)
			assert.LessOrEqual(t, seen[s][seq], kills+1, "stream %s message %d printed more often than kills can explain", s, seq)
		}
	}
	t.Logf("%d messages, %d lines printed (%d again after %d kills)", streams*perStream, lines, lines-streams*perStream, kills)
}

// subAckedAll reports whether every stream tl/0..n-1 is acked to its tail.
func subAckedAll(t *testing.T, c cli, cl *durable.Client, n int) bool {
	r := c.run(t, "sub", "get", "tl")
	var info struct {
		Streams []struct {
			Path  string `json:"path"`
			Acked string `json:"acked_offset"`
		} `json:"streams"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || len(info.Streams) != n {
		return false
	}
	for _, s := range info.Streams {
		h, err := cl.Head(context.Background(), s.Path)
		if err != nil || string(h.NextOffset) != s.Acked {
			return false
		}
	}
	return true
}

// eventually30 polls cond every 100 ms for up to 30 s.
func eventually30(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 30*time.Second, 100*time.Millisecond, msg)
}
