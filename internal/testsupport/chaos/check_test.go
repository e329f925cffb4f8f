package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hist builds a History from a compact description: each stream message is
// "w/e/s"; each read of the stream starts a new offset every 2 messages.
type hist struct {
	stream  []string
	acks    []string // "w/e/s@offsetIndex": acknowledged, offset after message offsetIndex
	handled map[string][]string
}

func offsetOf(i int) string { return fmt.Sprintf("%016d", i) }

func (h hist) build(t *testing.T) History {
	t.Helper()
	out := History{Writers: []string{"a", "b"}, Acks: map[string][]AckRecord{}, Handled: map[string][]HandledRecord{}}
	data := map[string][]byte{}
	for i, m := range h.stream {
		var ev Event
		var raw []byte
		if _, err := fmt.Sscanf(strings.ReplaceAll(m, "/", " "), "%s %d %d", &ev.W, &ev.E, &ev.S); err == nil {
			raw, _ = json.Marshal(ev)
		} else {
			raw = []byte(m)
		}
		data[m] = raw
		out.Stream = append(out.Stream, StreamMessage{Offset: offsetOf(i - i%2), Data: raw})
	}
	for _, a := range h.acks {
		var r AckRecord
		var at int
		_, err := fmt.Sscanf(strings.NewReplacer("/", " ", "@", " ").Replace(a), "%s %d %d %d", &r.W, &r.E, &r.S, &at)
		require.NoError(t, err, a)
		r.O = offsetOf(at + 1)
		out.Acks[r.W] = append(out.Acks[r.W], r)
	}
	for r, msgs := range h.handled {
		out.Handled[r] = []HandledRecord{}
		for _, m := range msgs {
			raw, ok := data[m]
			require.True(t, ok, m)
			out.Handled[r] = append(out.Handled[r], HandledRecord{Offset: offsetOf(len(out.Handled[r])), M: raw})
		}
	}
	return out
}

func TestCheck(t *testing.T) {
	clean := []string{"a/0/0", "b/0/0", "a/0/1", "a/0/2", "b/0/1"}
	tests := []struct {
		name string
		h    hist
		want []string // violation kinds, in order; nil = clean

		unacked, rewritten int
	}{
		{name: "clean", h: hist{
			stream:  clean,
			acks:    []string{"a/0/0@0", "a/0/1@2", "b/0/1@4"},
			handled: map[string][]string{"r1": clean, "r2": clean},
		}, unacked: 2},
		{name: "unacknowledged event rewritten by the next epoch is allowed", h: hist{
			stream:  []string{"a/0/0", "a/0/1", "a/1/1", "a/1/2"},
			acks:    []string{"a/0/0@0", "a/1/1@2"},
			handled: map[string][]string{"r1": {"a/0/0", "a/0/1", "a/1/1", "a/1/2"}},
		}, unacked: 2, rewritten: 1},
		{name: "duplicate in one epoch", h: hist{
			stream: []string{"a/0/0", "a/0/1", "a/0/1"},
		}, want: []string{"duplicate in one epoch", "gap or reorder in one epoch"}, unacked: 3},
		{name: "acknowledged event lost", h: hist{
			stream: []string{"a/0/0"},
			acks:   []string{"a/0/0@0", "a/0/1@0"},
		}, want: []string{"acknowledged event lost"}},
		{name: "acknowledged offset before the event", h: hist{
			stream: []string{"a/0/0", "a/0/1", "a/0/2"},
			acks:   []string{"a/0/2@0"},
		}, want: []string{"acknowledged offset too early"}, unacked: 2},
		{name: "acknowledged event rewritten", h: hist{
			stream: []string{"a/0/0", "a/0/1", "a/1/1"},
			acks:   []string{"a/0/1@1"},
		}, want: []string{"acknowledged event rewritten"}, unacked: 2, rewritten: 1},
		{name: "zombie write after fencing", h: hist{
			stream: []string{"a/0/0", "a/1/1", "a/0/1"},
		}, want: []string{"zombie write"}, unacked: 3, rewritten: 1},
		{name: "gap inside an epoch", h: hist{
			stream: []string{"a/0/0", "a/0/2"},
		}, want: []string{"gap or reorder in one epoch", "lost event"}, unacked: 2},
		{name: "hole across epochs", h: hist{
			stream: []string{"a/0/0", "a/1/2"},
		}, want: []string{"lost event"}, unacked: 2},
		{name: "foreign message", h: hist{
			stream: []string{"a/0/0", `{"x":1}`},
		}, want: []string{"foreign message"}, unacked: 1},
		{name: "handled twice", h: hist{
			stream:  clean,
			handled: map[string][]string{"r1": {"a/0/0", "b/0/0", "b/0/0", "a/0/1", "a/0/2", "b/0/1"}},
		}, want: []string{"handled log differs", "handled log length"}, unacked: 5},
		{name: "handled log skipped a message", h: hist{
			stream:  clean,
			handled: map[string][]string{"r1": {"a/0/0", "a/0/1", "a/0/2", "b/0/1"}},
		}, want: []string{"handled log differs", "handled log length"}, unacked: 5},
		{name: "handled log short", h: hist{
			stream:  clean,
			handled: map[string][]string{"r1": clean[:3]},
		}, want: []string{"handled log length"}, unacked: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(tt.h.build(t))
			assert.Equal(t, len(tt.h.stream), res.Events)
			assert.Equal(t, len(tt.h.acks), res.Acked)
			var kinds []string
			for _, v := range res.Violations {
				kinds = append(kinds, v[:strings.Index(v, ":")])
			}
			assert.Equal(t, tt.want, kinds, "%q", res.Violations)
			assert.Equal(t, len(tt.want), res.Total)
			assert.Equal(t, tt.unacked, res.Unacked, "unacked")
			assert.Equal(t, tt.rewritten, res.Rewritten, "rewritten")
		})
	}
}

func TestCheckHandledPositionsInOrder(t *testing.T) {
	h := hist{stream: []string{"a/0/0", "a/0/1", "a/0/2"}, handled: map[string][]string{"r1": {"a/0/0", "a/0/1", "a/0/2"}}}.build(t)
	log := h.Handled["r1"]
	log[1].Offset, log[1].Skip = log[0].Offset, 2
	log[2].Offset, log[2].Skip = log[0].Offset, 1
	res := Check(h)
	require.Len(t, res.Violations, 1, "%q", res.Violations)
	assert.Contains(t, res.Violations[0], "handled positions out of order: reader r1 entry 2")
}

func TestCheckReportsAtMostAFewOfAKind(t *testing.T) {
	var h hist
	for s := range 50 {
		h.acks = append(h.acks, fmt.Sprintf("a/0/%d@0", s))
	}
	res := Check(h.build(t))
	assert.Equal(t, 50, res.Total)
	assert.Len(t, res.Violations, maxReport+1)
}

func TestLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	l, err := OpenLog(path, -1)
	require.NoError(t, err)
	n1, err := l.Append(Event{W: "a", S: 1})
	require.NoError(t, err)
	n2, err := l.Append(Event{W: "a", S: 2})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	assert.Equal(t, n2, l.Size())

	// A torn last line is reported and left out.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"w":"a","s":`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	recs, torn, err := ReadLog[Event](path)
	require.NoError(t, err)
	assert.True(t, torn)
	assert.Equal(t, []Event{{W: "a", S: 1}, {W: "a", S: 2}}, recs)

	tests := []struct {
		name string
		size int64
		want []Event
	}{
		{"to the last complete line", -1, []Event{{W: "a", S: 1}, {W: "a", S: 2}}},
		{"to a committed length", n1, []Event{{W: "a", S: 1}}},
		{"to nothing", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := OpenLog(path, tt.size)
			require.NoError(t, err)
			_, err = l.Append(Event{W: "b"})
			require.NoError(t, err)
			require.NoError(t, l.Close())
			recs, torn, err := ReadLog[Event](path)
			require.NoError(t, err)
			assert.False(t, torn)
			assert.Equal(t, append(tt.want, Event{W: "b"}), recs)
			// Put the torn state back for the next case.
			require.NoError(t, os.Truncate(path, n2))
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteString(`{"w":`)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		})
	}

	_, err = OpenLog(path, 1<<20)
	assert.ErrorContains(t, err, "shorter than its committed length")
	recs, torn, err = ReadLog[Event](filepath.Join(dir, "missing"))
	assert.NoError(t, err)
	assert.False(t, torn)
	assert.Empty(t, recs)
}
