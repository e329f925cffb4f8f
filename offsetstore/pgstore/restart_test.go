//go:build pgrestart

package pgstore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
)

// This file restarts the machine's Postgres cluster, which every other
// test using it sees fail: it is built only with -tags pgrestart (run by
// .ci/steps/50-postgres.sh, on CI's own machine; by hand, at a quiet
// moment).

// restartPostgres runs pg_ctlcluster restart on the one cluster in
// /etc/postgresql (or PGSTORE_PG_VERSION).
func restartPostgres(t *testing.T) error {
	version := os.Getenv("PGSTORE_PG_VERSION")
	if version == "" {
		entries, err := os.ReadDir("/etc/postgresql")
		if err != nil || len(entries) != 1 {
			return fmt.Errorf("want exactly one version in /etc/postgresql (or set PGSTORE_PG_VERSION): %v", err)
		}
		version = entries[0].Name()
	}
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctlcluster restart: %v: %s", err, out)
	}
	t.Logf("pg_ctlcluster %s main restart: done", version)
	return nil
}

// Postgres restarted under load: three exclusive consumer processes and
// two writers (one started while the database is down, whose epoch store
// is Postgres) pause, reconnect and go on; every item lands exactly once.
func TestSinkSurvivesPostgresRestart(t *testing.T) {
	const itemsA, itemsB, rate = 4000, 1000, 400
	e := newSinkEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = e.start(fmt.Sprint("replica-", i), "-exclusive", "-ttl", "1s")
	}
	// Writer A: items 1..itemsA, epoch from Postgres before the restart.
	wa, err := durable.NewWriter[item](e.client, "items", durable.WithProducerID("writer-a"), durable.WithEpochStore(e.s))
	require.NoError(t, err)
	aDone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := 1; i <= itemsA; i++ {
			if err := wa.Write(ctx, item{N: i}); err != nil {
				aDone <- err
				return
			}
			<-tick.C
		}
		aDone <- wa.Close(ctx)
	}()

	// Let the consumers get going, then restart the database.
	require.Eventually(t, func() bool { return len(sinkCounts(t, e.s, e.table)) > 500 }, time.Minute, 50*time.Millisecond)
	restarted := make(chan error, 1)
	go func() { restarted <- restartPostgres(t) }()
	require.Eventually(t, func() bool {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		return e.s.Pool().Ping(pctx) != nil
	}, time.Minute, 5*time.Millisecond, "the database never went down")

	// Writer B starts while the database is down: its epoch cannot be
	// claimed; it retries until the database is back.
	attempts, firstErr := 0, error(nil)
	var wb *durable.Writer[item]
	for {
		attempts++
		w, err := durable.NewWriter[item](e.client, "items", durable.WithProducerID("writer-b"), durable.WithEpochStore(e.s))
		require.NoError(t, err)
		err = w.Write(ctx, item{N: itemsA + 1})
		if err == nil {
			err = w.Flush(ctx)
		}
		if err == nil {
			wb = w
			break
		}
		_ = w.Close(ctx)
		if firstErr == nil {
			firstErr = err
		}
		require.Less(t, attempts, 600, "writer B never got its epoch: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, <-restarted)
	require.Error(t, firstErr, "writer B's first try should have met the database down")
	assert.True(t, strings.Contains(firstErr.Error(), "producer epoch"), "%v", firstErr)
	t.Logf("writer B: %d tries; the first failed with: %v", attempts, firstErr)
	for i := itemsA + 2; i <= itemsA+itemsB; i++ {
		require.NoError(t, wb.Write(ctx, item{N: i}))
	}
	require.NoError(t, wb.Close(ctx))
	require.NoError(t, <-aDone)
	_, err = e.client.CloseStream(ctx, "items", durable.CloseOptions{})
	require.NoError(t, err)

	for _, p := range procs {
		p.waitDone(t, 3*time.Minute)
	}
	e.assertExactlyOnce(itemsA + itemsB)
	epoch, ok, err := e.s.LoadEpoch(ctx, "writer-b")
	require.NoError(t, err)
	assert.True(t, ok)
	t.Logf("writer B's epoch: %d", epoch)

	// The outage cost the holder its lease; someone took it again.
	lost, acquired := 0, len(e.tenures())
	e.mu.Lock()
	for _, l := range e.lines {
		if strings.HasPrefix(l.text, "lease lost") {
			lost++
		}
	}
	e.mu.Unlock()
	t.Logf("lease tenures: %d, lost: %d", acquired, lost)
	assert.Positive(t, lost, "the restart should have cost the holder its lease")
	assert.Greater(t, acquired, 1)
}
