package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	ext := testserver.New()
	t.Cleanup(ext.Close)
	for _, cfg := range []config{
		{Events: 200},                    // embedded server, with faults
		{URL: ext.URL(), Events: 50},     // a server by URL, a fresh stream deleted at the end
		{URL: ext.URL(), Stream: "kept"}, // a named stream
	} {
		if cfg.Events == 0 {
			cfg.Events = 10
		}
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), cfg, &out), out.String())
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		require.Equal(t, fmt.Sprintf("otel: %d events written and read", cfg.Events), lines[len(lines)-1], "the verdict comes last, after the exporters' output")
	}
}

func TestRunBadConfig(t *testing.T) {
	require.Error(t, run(context.Background(), config{Events: 0}, &bytes.Buffer{}))
	require.Error(t, run(context.Background(), config{URL: "ftp://x", Events: 1}, &bytes.Buffer{}))
}
