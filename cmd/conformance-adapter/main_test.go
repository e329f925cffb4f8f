package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/durablego/durable/internal/testsupport/syncbuf"
	"github.com/stretchr/testify/require"
)

// TestBinary builds the adapter and drives it through its real stdin and
// stdout, as the runner does: every stdout line is one JSON result, and
// shutdown ends the process with status 0.
func TestBinary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bin := filepath.Join(t.TempDir(), "conformance-adapter")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)

	path := newPath()
	cmds := []map[string]any{
		{"type": "init", "serverUrl": e.url},
		{"type": "create", "path": path, "contentType": "text/plain"},
		{"type": "append", "path": path, "data": "line\u2028sep"},
		{"type": "read", "path": path, "live": "long-poll", "timeoutMs": 500},
		{"type": "head", "path": "/missing-binary"},
		{"type": "shutdown"},
	}
	var results []map[string]any
	for _, c := range cmds {
		b, err := json.Marshal(c)
		require.NoError(t, err)
		_, err = stdin.Write(append(b, '\n'))
		require.NoError(t, err)
		require.True(t, sc.Scan(), "no result for %s (stderr: %s)", b, stderr.String())
		var res map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &res), "not JSON: %q", sc.Text())
		require.NotContains(t, sc.Text(), "\u2028", "U+2028 is escaped so a line stays a line")
		results = append(results, res)
	}
	require.False(t, sc.Scan(), "nothing after the shutdown result: %q", sc.Text())
	require.NoError(t, cmd.Wait())
	require.Empty(t, stderr.String())

	ok(t, results[0], "init")
	require.EqualValues(t, 201, ok(t, results[1], "create")["status"])
	ok(t, results[2], "append")
	read := ok(t, results[3], "read")
	require.Equal(t, "line\u2028sep", data(read))
	fails(t, results[4], "head", codeNotFound, 404)
	ok(t, results[5], "shutdown")
}
