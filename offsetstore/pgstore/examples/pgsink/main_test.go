package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The demonstration runs against the real database (DATABASE_URL or the
// local test database; a missing database fails the test) and prints a
// clean verdict.
func TestRunEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cfg := config{Stream: "events", Schema: fmt.Sprintf("pgsink_test_%d", os.Getpid()), Events: 300}
	require.NoError(t, run(ctx, cfg, os.Getenv("DATABASE_URL"), &out), out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	assert.Contains(t, last, "pgsink: 300 events, 300 rows, 0 missing, 0 duplicated (handed over after 100 events: token 1 -> 2)")
}

func TestRunBadDatabase(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), config{Schema: "x", Events: 1}, "postgres://postgres@127.0.0.1:1/test", &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot reach the database")
}
