package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/testsupport/syncbuf"
	"github.com/durablego/durable/offsetstore"
	"github.com/durablego/durable/testserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tailUntil runs the demo until it has printed at least n lines, the last
// one containing want, then cancels it (as Ctrl-C does) and returns what it
// printed.
func tailUntil(t *testing.T, cfg config, n int, want string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &out, &errOut) }()
	deadline := time.After(10 * time.Second)
	for lines := out.Lines(); len(lines) < n || lines[0] == "" || !strings.Contains(lines[len(lines)-1], want); lines = out.Lines() {
		select {
		case err := <-done:
			t.Fatalf("run ended early: %v\nstderr: %s", err, errOut.String())
		case <-deadline:
			t.Fatalf("no %d lines in time; stdout: %q stderr: %s", n, out.String(), errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, errOut.String())
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop after its context was cancelled")
	}
	return out.String(), errOut.String()
}

// TestDemoResume stops the demo twice and checks that, across the runs, each
// event is printed once, in order, with nothing skipped.
func TestDemoResume(t *testing.T) {
	t.Parallel()
	cfg := config{Dir: t.TempDir(), From: "start", Live: "long-poll", Every: 10 * time.Millisecond}
	out1, err1 := tailUntil(t, cfg, 5, "")
	assert.Contains(t, err1, "tail: tailing ")
	assert.Contains(t, err1, "tail: stopped after ")
	// On a loaded machine the first run's writer may get far ahead of its
	// tail: the second run prints those ticks first, then its own.
	out2, err2 := tailUntil(t, cfg, 5, `"run":1`)
	assert.Contains(t, err2, "tail: resuming ")
	assert.Contains(t, err2, "writer run 1 ")

	var ticks []Tick
	for _, line := range strings.Split(strings.TrimSpace(out1+out2), "\n") {
		var tk Tick
		require.NoError(t, json.Unmarshal([]byte(line), &tk), line)
		ticks = append(ticks, tk)
	}
	next := map[int64]int{0: 1, 1: 1} // the next N expected from each run
	for _, tk := range ticks {
		require.Equal(t, next[tk.Run], tk.N, "run %d: every tick once, in order: %v", tk.Run, ticks)
		next[tk.Run]++
	}
	assert.Greater(t, next[1], 1, "the second run printed its own ticks")

	// The offset file holds the position after the last printed tick.
	store, err := offsetstore.OpenFile(filepath.Join(cfg.Dir, "tail.offsets"))
	require.NoError(t, err)
	defer store.Close()
	_, ok, err := store.Load(context.Background(), "demo")
	require.NoError(t, err)
	assert.True(t, ok)
}

// TestURL tails a stream of a server given by URL: a closed stream ends the
// run without an error, and a second run resumes after the end.
func TestURL(t *testing.T) {
	t.Parallel()
	srv := testserver.New()
	t.Cleanup(srv.Close)
	ctx := context.Background()
	c, err := durable.NewClient(srv.StreamURL(""))
	require.NoError(t, err)

	tests := []struct {
		name        string
		contentType string
		data        []string
		want        string
	}{
		{"json", "application/json", []string{`{"a":1}`, `[{"b":2},"c"]`}, "{\"a\":1}\n{\"b\":2}\n\"c\"\n"},
		{"text", "text/plain", []string{"one\n", "two\n"}, "one\ntwo\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Create(ctx, tt.name, durable.CreateOptions{ContentType: tt.contentType})
			require.NoError(t, err)
			for _, d := range tt.data {
				_, err := c.Append(ctx, tt.name, []byte(d), durable.AppendOptions{ContentType: tt.contentType})
				require.NoError(t, err)
			}
			_, err = c.CloseStream(ctx, tt.name, nil, durable.AppendOptions{})
			require.NoError(t, err)

			cfg := config{URL: srv.URL(), Stream: tt.name, OffsetFile: filepath.Join(t.TempDir(), "o"), From: "start", Live: "sse"}
			var out, errOut bytes.Buffer
			require.NoError(t, run(ctx, cfg, &out, &errOut))
			assert.Equal(t, tt.want, out.String())
			assert.Contains(t, errOut.String(), "tail: the stream is closed")

			out.Reset()
			errOut.Reset()
			require.NoError(t, run(ctx, cfg, &out, &errOut))
			assert.Empty(t, out.String(), "nothing again after a resume")
			assert.Contains(t, errOut.String(), "tail: resuming ")
		})
	}
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  config
		want string
	}{
		{"live", config{Live: "websocket", From: "start"}, "-live"},
		{"offset file dir missing", config{Live: "long-poll", From: "start", URL: "http://127.0.0.1:1", Stream: "x", OffsetFile: "/nonexistent/dir/f"}, "no such file"},
		{"locked", config{Live: "long-poll", From: "start", URL: "http://127.0.0.1:1", Stream: "x"}, "another tail"},
		{"url without stream", config{Live: "long-poll", From: "start", URL: "http://127.0.0.1:1", OffsetFile: "o"}, "-url and -stream go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.name == "locked" {
				tt.cfg.OffsetFile = filepath.Join(t.TempDir(), "o")
				f, err := offsetstore.OpenFile(tt.cfg.OffsetFile)
				require.NoError(t, err)
				defer f.Close()
			}
			err := run(context.Background(), tt.cfg, &bytes.Buffer{}, &bytes.Buffer{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
