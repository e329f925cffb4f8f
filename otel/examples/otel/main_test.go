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
	for _, args := range [][]string{
		nil,                                  // no flags: the embedded server, with faults
		{"-url", ext.URL(), "-events", "50"}, // a server by URL, a fresh stream deleted at the end
		{"-url", ext.URL(), "-stream", "kept", "-events", "10"}, // a named stream
	} {
		cfg, err := parseFlags(args)
		require.NoError(t, err)
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), cfg, &out), out.String())
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		retries := 0
		if cfg.URL == "" {
			retries = 3 // the embedded server's faults
		}
		require.Equal(t, fmt.Sprintf("otel: %d events written and read; %d retries", cfg.Events, retries), lines[len(lines)-1],
			"the verdict comes last, after the exporters' output")
		for _, name := range []string{`"Name": "append /v1/stream/`, `"Name": "read /v1/stream/`, `"Name": "messaging.client.sent.messages"`,
			`"Name": "messaging.client.consumed.messages"`, `"Name": "http.client.request.duration"`, `"Name": "messaging.client.operation.duration"`} {
			require.True(t, strings.Contains(out.String(), name), "the output shows %s", name)
		}
		if retries > 0 {
			require.True(t, strings.Contains(out.String(), `"Name": "durable.retry"`), "a retry is an event of its span")
			require.True(t, strings.Contains(out.String(), `"Name": "durable.client.retries"`))
		}
	}
}

func TestRunBadConfig(t *testing.T) {
	_, err := parseFlags([]string{"-events", "x"})
	require.Error(t, err)
	require.Error(t, run(context.Background(), config{Events: 0}, &bytes.Buffer{}))
	require.Error(t, run(context.Background(), config{URL: "ftp://x", Events: 1}, &bytes.Buffer{}))
}
