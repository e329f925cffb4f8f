package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
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
	// Every event once, none from a deposed holder, the handover after
	// exactly a third of them. The tokens are every acquisition in order:
	// 1 -> 2 (the handover) unless a replica also lost its lease on the
	// way (a machine stalled for a whole TTL), which adds the next token
	// each time, never a gap or a step back.
	m := regexp.MustCompile(`^pgsink: 300 events, 300 rows, 0 missing, 0 duplicated, 0 from a deposed holder ` +
		`\(handed over after 100 events: token (\d+(?: -> \d+)+)\)$`).FindStringSubmatch(last)
	require.NotNil(t, m, "verdict: %s", last)
	chain := strings.Split(m[1], " -> ")
	for i, tok := range chain {
		assert.Equal(t, strconv.Itoa(i+1), tok, "token chain %s", m[1])
	}
	if m[1] != "1 -> 2" {
		t.Logf("a lease was lost besides the handover: token %s", m[1])
	}
}

func TestRunBadDatabase(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), config{Schema: "x", Events: 1}, "postgres://postgres@127.0.0.1:1/test", &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot reach the database")
}
