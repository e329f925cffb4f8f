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
// test using it sees fail: it is built only with -tags pgrestart, and run
// alone: .ci/steps/50-postgres.sh runs it in a go test of its own after
// every other test (by hand: go test -race -tags pgrestart -run
// TestSinkSurvivesPostgresRestart . at a quiet moment), and within this
// package it waits until no other test uses the database and keeps them
// waiting until it ends (holdDatabaseAlone).

// holdDatabaseAlone waits until no other test of this package uses the
// database and keeps new ones waiting until t ends.
func holdDatabaseAlone(t *testing.T) {
	dbGate.mu.Lock()
	defer dbGate.mu.Unlock()
	for dbGate.alone != "" || dbGate.users > 0 {
		dbGate.cond.Wait()
	}
	dbGate.alone = t.Name()
	t.Cleanup(func() {
		dbGate.mu.Lock()
		dbGate.alone = ""
		dbGate.cond.Broadcast()
		dbGate.mu.Unlock()
	})
}

// itemsSoFar returns how many distinct items the sink table holds, or -1
// while the database cannot answer (it is restarting).
func (e *sinkEnv) itemsSoFar() int {
	var n int
	if err := e.s.Pool().QueryRow(context.Background(), `SELECT count(DISTINCT n) FROM `+e.table).Scan(&n); err != nil {
		return -1
	}
	return n
}

// leaseLostLines counts the "lease lost" lines the processes logged.
func (e *sinkEnv) leaseLostLines() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, l := range e.lines {
		if strings.HasPrefix(l.text, "lease lost") {
			n++
		}
	}
	return n
}

// pgCluster runs pg_ctlcluster action on the one cluster in
// /etc/postgresql (or PGSTORE_PG_VERSION).
func pgCluster(t *testing.T, action string) {
	t.Helper()
	version := os.Getenv("PGSTORE_PG_VERSION")
	if version == "" {
		entries, err := os.ReadDir("/etc/postgresql")
		require.NoError(t, err, "set PGSTORE_PG_VERSION")
		require.Len(t, entries, 1, "want exactly one version in /etc/postgresql (or set PGSTORE_PG_VERSION)")
		version = entries[0].Name()
	}
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action).CombinedOutput()
	require.NoError(t, err, "pg_ctlcluster %s main %s: %s", version, action, out)
	t.Logf("%s pg_ctlcluster %s main %s: done", time.Now().Format(time.TimeOnly), version, action)
}

// Postgres restarted under load (pg_ctlcluster restart; then stopped,
// down until the holder's lease ran out, started): three exclusive
// consumer processes and two writers (one started while the database is
// down, whose epoch store is Postgres) pause, reconnect and go on; every
// item lands exactly once, a later item never under an earlier token, and
// the lease tenures never overlap.
func TestSinkSurvivesPostgresRestart(t *testing.T) {
	holdDatabaseAlone(t)
	const itemsA, itemsB, rate = 6000, 1000, 400
	e := newSinkEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = e.start(fmt.Sprint("replica-", i), "-exclusive", "-ttl", "1s")
	}
	// Writer A: items 1..itemsA, epoch from Postgres before the restart.
	wa, err := durable.NewWriter(e.client, "items", durable.JSONCodec[item]{}, durable.WithProducerID("writer-a"), durable.WithEpochStore(e.s))
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

	// Let the consumers get going, then restart the database twice: with
	// pg_ctlcluster restart, and by stopping it (fast shutdown, as restart
	// does), keeping it down until the holder has lost its lease, and
	// starting it again.
	require.Eventually(t, func() bool { return e.itemsSoFar() > 500 }, 2*time.Minute, 50*time.Millisecond)
	// First a plain restart; the consumers go on after it.
	pgCluster(t, "restart")
	var before int
	require.Eventually(t, func() bool { before = e.itemsSoFar(); return before >= 0 }, time.Minute, 50*time.Millisecond,
		"the database did not answer after the restart")
	require.Eventually(t, func() bool { return e.itemsSoFar() > before+200 }, 2*time.Minute, 50*time.Millisecond,
		"the consumers did not go on after the restart")
	// A holder to lose its lease in the outage (they hand over only when
	// one loses it: a gap between tenures is a poll interval).
	require.Eventually(t, func() bool { return e.currentHolder() != "" }, time.Minute, 10*time.Millisecond, "no holder")
	lostBefore := e.leaseLostLines()
	pgCluster(t, "stop")
	restarted := false
	defer func() {
		if !restarted {
			pgCluster(t, "start")
		}
	}()

	// Writer B starts while the database is down: its epoch cannot be
	// claimed, a typed error says why, and it tries again until the
	// database is back.
	wb, err := durable.NewWriter(e.client, "items", durable.JSONCodec[item]{}, durable.WithProducerID("writer-b"), durable.WithEpochStore(e.s))
	require.NoError(t, err)
	err = wb.Write(ctx, item{N: itemsA + 1})
	if err == nil {
		err = wb.Flush(ctx)
	}
	require.ErrorIs(t, err, ErrConnect, "writer B while the database is down")
	assert.Contains(t, err.Error(), "producer epoch")
	t.Logf("writer B while the database is down: %v", err)
	_ = wb.Close(ctx)
	// The outage lasts until the holder's TTL ran out with no renewal.
	require.Eventually(t, func() bool { return e.leaseLostLines() > lostBefore }, time.Minute, 10*time.Millisecond,
		"the holder did not lose its lease while the database was down")
	pgCluster(t, "start")
	restarted = true

	attempts := 0
	for {
		attempts++
		w, err := durable.NewWriter(e.client, "items", durable.JSONCodec[item]{}, durable.WithProducerID("writer-b"), durable.WithEpochStore(e.s))
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
		require.Less(t, attempts, 600, "writer B never got its epoch: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("writer B after the restart: %d tries", attempts)
	for i := itemsA + 2; i <= itemsA+itemsB; i++ {
		require.NoError(t, wb.Write(ctx, item{N: i}))
	}
	require.NoError(t, wb.Close(ctx))
	require.NoError(t, <-aDone)
	_, err = e.client.CloseStream(ctx, "items", nil, durable.AppendOptions{})
	require.NoError(t, err)

	for _, p := range procs {
		p.waitDone(t, 3*time.Minute)
	}
	e.assertExactlyOnce(itemsA + itemsB)
	epoch, ok, err := e.s.LoadEpoch(ctx, "writer-b")
	require.NoError(t, err)
	assert.True(t, ok)
	t.Logf("writer B's epoch: %d", epoch)

	e.assertTokensNeverGoBack()

	// The outage cost the holder its lease; someone took it again, and
	// never while another held it.
	tenures := e.tenures()
	assertTenuresApart(t, tenures)
	t.Logf("lease tenures: %d, lost: %d", len(tenures), e.leaseLostLines())
	assert.Greater(t, len(tenures), 1)
}
