package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readJobs reads a whole stream back and counts jobs per run and worker.
func readJobs(t *testing.T, url string) map[string][]int {
	t.Helper()
	c, err := durable.NewClient(url)
	require.NoError(t, err)
	r, err := durable.NewReader(c, url, durable.JSONCodec[Job]{}, durable.WithLive(durable.LiveNone))
	require.NoError(t, err)
	defer r.Close(context.Background())
	counts := map[string][]int{}
	for m, err := range r.Messages(context.Background()) {
		require.NoError(t, err)
		for len(counts[m.Value.Run]) <= m.Value.Worker {
			counts[m.Value.Run] = append(counts[m.Value.Run], 0)
		}
		counts[m.Value.Run][m.Value.Worker]++
	}
	return counts
}

// TestRun runs the workers twice against one server and one epoch file, and
// checks by reading the stream back that the counts add up and that the
// second run took the next epochs.
func TestRun(t *testing.T) {
	t.Parallel()
	srv := testserver.New()
	t.Cleanup(srv.Close)
	epochFile := filepath.Join(t.TempDir(), "epochs")

	tests := []struct {
		name string
		cfg  config
	}{
		{"count", config{Workers: 3, Count: 3001}},
		{"duration with a rate line", config{Workers: 2, Duration: 100 * time.Millisecond, Live: true}},
	}
	var runs []result
	for _, tt := range tests { // in order: the second run uses the next epochs
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.URL, cfg.Stream, cfg.EpochFile = srv.URL(), "jobs", epochFile
			var out, errOut bytes.Buffer
			res, err := run(context.Background(), cfg, &out, &errOut)
			require.NoError(t, err, out.String())
			require.Len(t, res.Appended, cfg.Workers)
			if cfg.Count > 0 {
				assert.Equal(t, cfg.Count, res.Total())
			}
			assert.Positive(t, res.Total())
			assert.Equal(t, res.Total(), res.ReadBack)
			assert.Contains(t, out.String(), "check:  read back ")
			if cfg.Live {
				assert.Contains(t, errOut.String(), "\r\033[Kworker: ")
			} else {
				assert.Empty(t, errOut.String())
			}
			runs = append(runs, res)
		})
	}
	require.Len(t, runs, 2)
	for i := range runs[1].Epochs {
		assert.Equal(t, runs[0].Epochs[i]+1, runs[1].Epochs[i], "worker-%d: the next run fences the last", i)
	}

	got := readJobs(t, srv.StreamURL("jobs"))
	require.Len(t, got, 2)
	for _, res := range runs {
		assert.Equal(t, res.Appended, got[res.Run], "run %s: jobs per worker in the stream", res.Run)
	}
}

// cancelAfterStart is run's stdout: once the workers have started, it
// cancels ctx after a while (as Ctrl-C would). The setup before (which can
// be slow on a loaded machine) does not count.
type cancelAfterStart struct {
	bytes.Buffer
	cancel context.CancelFunc
	after  time.Duration
}

func (c *cancelAfterStart) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(" workers appending to stream ")) {
		time.AfterFunc(c.after, c.cancel)
	}
	return c.Buffer.Write(p)
}

// TestEmbedded runs with no URL (the embedded server) and stops on ctx.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelAfterStart{cancel: cancel, after: 300 * time.Millisecond}
	res, err := run(ctx, config{Workers: 2, Count: 1 << 30, EpochFile: filepath.Join(t.TempDir(), "e")}, out, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Positive(t, res.Total())
	assert.True(t, strings.HasSuffix(out.String(), "worker: interrupted; every job queued before the interrupt landed\n"), out.String())
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  config
	}{
		{"no workers", config{Workers: 0, Count: 1}},
		{"no bound", config{Workers: 1}},
		{"bad url", config{Workers: 1, Count: 1, URL: "ftp://x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := run(context.Background(), tt.cfg, &bytes.Buffer{}, &bytes.Buffer{})
			require.Error(t, err)
		})
	}
}
