package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable/internal/testsupport/syncbuf"
	"github.com/durablego/durable/offsetstore"
)

func TestCheckpointOpenOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		existing string // "" = no file
		meta     func(path string) string
		saved    bool
		cut      int64
		length   int64
		err      bool
	}{
		{"new file", "", nil, false, 0, 0, false},
		{"existing file is appended to", "old\n", nil, false, 0, 4, false},
		{"in step", "abc\n", func(p string) string { return outputMeta{p, 4}.encode() }, true, 0, 4, false},
		{"tail after the save is cut", "abc\ndef\n", func(p string) string { return outputMeta{p, 4}.encode() }, true, 4, 4, false},
		{"shorter than recorded", "ab", func(p string) string { return outputMeta{p, 4}.encode() }, true, 0, 0, true},
		{"another file", "abc\n", func(p string) string { return outputMeta{p + ".x", 4}.encode() }, true, 0, 0, true},
		{"saved without output", "abc\n", func(string) string { return "" }, true, 0, 0, true},
		{"garbled meta", "abc\n", func(string) string { return "{" }, true, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "out")
			if tt.existing != "" {
				require.NoError(t, os.WriteFile(path, []byte(tt.existing), 0o644))
			}
			var pos offsetstore.Position
			if tt.meta != nil {
				pos = offsetstore.Position{Offset: "1", Meta: tt.meta(path)}
			}
			var cp checkpoint
			cut, err := cp.openOutput(path, pos, tt.saved)
			if tt.err {
				assert.ErrorIs(t, err, errOutputMismatch)
				return
			}
			require.NoError(t, err)
			defer cp.close()
			assert.Equal(t, tt.cut, cut)
			assert.Equal(t, tt.length, cp.length)
			st, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, tt.length, st.Size())
		})
	}
}

// TestCheckpointCrash simulates a crash between writing and saving: a new
// checkpoint on the same files cuts off what the crashed one wrote after
// its last save.
func TestCheckpointCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	out, offsets := filepath.Join(dir, "out"), filepath.Join(dir, "offsets")

	open := func() (*checkpoint, offsetstore.Position, bool) {
		st, err := offsetstore.OpenFile(offsets)
		require.NoError(t, err)
		cp := &checkpoint{store: st, key: "k"}
		pos, ok, err := st.Load(ctx, "k")
		require.NoError(t, err)
		_, err = cp.openOutput(out, pos, ok)
		require.NoError(t, err)
		return cp, pos, ok
	}
	cp, _, ok := open()
	require.False(t, ok)
	require.NoError(t, cp.saveStart(ctx, offsetstore.Position{Offset: "-1"}))
	require.NoError(t, cp.write([]byte("1\n"), offsetstore.Position{Offset: "a", Skip: 1}))
	require.NoError(t, cp.write([]byte("2\n"), offsetstore.Position{Offset: "b"}))
	require.NoError(t, cp.commit(ctx))
	require.NoError(t, cp.write([]byte("3\n"), offsetstore.Position{Offset: "c"}))
	require.NoError(t, cp.w.Flush()) // written, not saved: then the crash
	require.NoError(t, cp.close())
	require.NoError(t, cp.store.Close())
	b, _ := os.ReadFile(out)
	require.Equal(t, "1\n2\n3\n", string(b))

	cp, pos, ok := open()
	defer cp.store.Close()
	defer cp.close()
	require.True(t, ok)
	assert.Equal(t, "b", pos.Offset, "resumes after the last saved message")
	b, _ = os.ReadFile(out)
	assert.Equal(t, "1\n2\n", string(b), "the unsaved line is cut")
	require.NoError(t, cp.write([]byte("3\n"), offsetstore.Position{Offset: "c"}))
	require.NoError(t, cp.commit(ctx))
	b, _ = os.ReadFile(out)
	assert.Equal(t, "1\n2\n3\n", string(b))
	m, err := decodeOutputMeta(cp.saved.Meta)
	require.NoError(t, err)
	assert.Equal(t, int64(6), m.Length)
}

func TestProgress(t *testing.T) {
	t.Parallel()
	assert.Nil(t, newProgress(&syncbuf.Buffer{}), "no progress unless stderr is a terminal")
	var b syncbuf.Buffer
	p := &progress{w: &b}
	m := tailMsg{pos: offsetstore.Position{Offset: "x"}}
	p.update(m, false)
	assert.Empty(t, b.String(), "not during the first seconds")
	p.start = p.start.Add(-progressDelay)
	p.update(m, false)
	assert.Contains(t, b.String(), "catching up: 2 messages, at offset x")
	p.update(m, true)
	assert.Contains(t, b.String(), "\r\033[K")
	assert.False(t, p.showing)
	var nilp *progress
	nilp.update(m, false)
	nilp.clear()
}
