package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/durablego/durable/testserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	t.Parallel()
	ext := testserver.New()
	t.Cleanup(ext.Close)

	tests := []struct {
		name string
		cfg  config
	}{
		{"embedded with faults, random crash", config{Writers: 3, Events: 150, Spread: 100 * time.Millisecond, Faults: true}},
		{"crash after the first event", config{Writers: 2, Events: 60, CrashAfter: 1, Faults: true}},
		{"crash before the last event", config{Writers: 4, Events: 60, CrashAfter: 59}},
		{"real server by URL", config{URL: ext.URL(), Writers: 2, Events: 60, Spread: 50 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			res, err := run(context.Background(), tt.cfg, &out)
			require.NoError(t, err, out.String())
			assert.Equal(t, tt.cfg.Events, res.Events)
			assert.Zero(t, res.Lost, "lost")
			assert.Zero(t, res.Repeated, "repeated")
			assert.Zero(t, res.OutOfOrder, "out of order")
			assert.Equal(t, tt.cfg.Events, res.Delivered)
			if tt.cfg.CrashAfter != 0 {
				assert.Equal(t, tt.cfg.CrashAfter, res.CrashAfter)
			}
			assert.True(t, res.CrashAfter > 0 && res.CrashAfter < tt.cfg.Events, "crash point %d", res.CrashAfter)

			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			verdict := lines[len(lines)-1]
			assert.Regexp(t, `^quickstart: \d+ events, 0 lost, 0 repeated \(crash after \d+, resumed from offset file\)$`, verdict)
			assert.Contains(t, out.String(), "restart:  reader 2 resumes from the offset file: offset ")
			assert.Contains(t, out.String(), "then the end of the stream (io.EOF)")
			if tt.cfg.Faults {
				assert.Contains(t, out.String(), "2 batches sent again after a failed request")
				assert.Contains(t, out.String(), "the readers retried 1 failed read")
			}
		})
	}
}

// TestTally checks that the verdict is not vacuous: losses, repeats,
// reordering and foreign messages are all counted.
func TestTally(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                                              string
		events                                            []Event
		delivered, lost, repeated, outOfOrder, unexpected int
	}{
		{"all once", []Event{{1, 0}, {2, 1}, {3, 0}, {4, 1}}, 4, 0, 0, 0, 0},
		{"one lost", []Event{{1, 0}, {2, 1}, {4, 1}}, 3, 1, 0, 0, 0},
		{"one repeated", []Event{{1, 0}, {2, 1}, {2, 1}, {3, 0}, {4, 1}}, 5, 0, 1, 0, 0},
		{"reordered within a writer", []Event{{3, 0}, {1, 0}, {2, 1}, {4, 1}}, 4, 0, 0, 1, 0},
		{"foreign", []Event{{1, 0}, {2, 1}, {3, 0}, {4, 1}, {9, 0}, {1, 1}}, 6, 0, 0, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tl := newTally(4, 2)
			for _, e := range tt.events {
				tl.add(e)
			}
			d, l, r, o, u := tl.summary()
			assert.Equal(t, []int{tt.delivered, tt.lost, tt.repeated, tt.outOfOrder, tt.unexpected}, []int{d, l, r, o, u})
		})
	}
}

// TestRunCancel stops a run midway (Ctrl-C): it returns promptly with the
// context's error, and leaves no goroutine behind (goleak).
func TestRunCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := run(ctx, config{Writers: 2, Events: 1000, CrashAfter: 999, Spread: 10 * time.Second}, &bytes.Buffer{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(began), 5*time.Second)
}

func TestRunBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  config
	}{
		{"no writers", config{Writers: 0, Events: 10}},
		{"fewer events than writers", config{Writers: 4, Events: 3}},
		{"crash after the end", config{Writers: 1, Events: 10, CrashAfter: 10}},
		{"bad url", config{URL: "ftp://x", Writers: 1, Events: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := run(context.Background(), tt.cfg, &bytes.Buffer{})
			require.Error(t, err)
			assert.False(t, errors.Is(err, errVerdict))
		})
	}
}
