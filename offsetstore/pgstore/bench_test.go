package pgstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
)

// The commit benchmarks: the cost of committing one message's position,
// per message (ns/op is per message throughout; msgs/s is the same
// figure inverted).
//
//	go test -run '^$' -bench Commit -count 6 ./ | tee new.txt; benchstat new.txt
//
// file:          the File store's Save (temp file, fsync, rename, fsync dir)
//                after each message: at-least-once, no side effect.
// pg-save:       Store.Save after each message, no transaction of the
//                caller's (the Reader's own commit on Postgres).
// pg-tx:         per message, one transaction: INSERT the message's row,
//                CommitTx, COMMIT (exactly once).
// pg-tx-fenced:  the same with Lease.CommitTx (the lease row checked and
//                locked in the transaction).
// pg-tx-batch-N: N messages per transaction (N INSERTs, one CommitTx, one
//                COMMIT).

func benchPosition(i int) offsetstore.Position {
	return offsetstore.Position{Offset: "0000000000000001_0000000000001234", Skip: int64(i + 1)}
}

func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	b.Run("file", func(b *testing.B) {
		f, err := offsetstore.OpenFile(filepath.Join(b.TempDir(), "offsets.json"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		for i := 0; b.Loop(); i++ {
			if err := f.Save(ctx, "k", benchPosition(i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("pg-save", func(b *testing.B) {
		s := openTest(b)
		for i := 0; b.Loop(); i++ {
			if err := s.Save(ctx, "k", benchPosition(i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	for _, tt := range []struct {
		name   string
		batch  int
		fenced bool
	}{
		{"pg-tx", 1, false},
		{"pg-tx-fenced", 1, true},
		{"pg-tx-batch-10", 10, false},
		{"pg-tx-batch-100", 100, false},
	} {
		b.Run(tt.name, func(b *testing.B) {
			s := openTest(b)
			table := pgx.Identifier{s.t.schemaName, "sink"}.Sanitize()
			if _, err := s.Pool().Exec(ctx, `CREATE TABLE `+table+` (n int NOT NULL, data text NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			var lease *Lease
			if tt.fenced {
				var err error
				if lease, err = s.AcquireLease(ctx, "k", WithLeaseTTL(time.Minute)); err != nil {
					b.Fatal(err)
				}
				defer lease.Release(ctx)
			}
			i := 0
			for b.Loop() {
				// b.N counts messages: a transaction per batch.
				if i%tt.batch == 0 {
					benchTx(b, s, lease, table, i, tt.batch)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// benchTx commits messages first..first+n-1 in one transaction.
func benchTx(b *testing.B, s *Store, lease *Lease, table string, first, n int) {
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		for i := first; i < first+n; i++ {
			if _, err := tx.Exec(ctx, `INSERT INTO `+table+` VALUES ($1, $2)`, i, `{"n":1,"item":"tea"}`); err != nil {
				return err
			}
		}
		if lease != nil {
			return lease.CommitTx(ctx, tx, benchPosition(first+n-1))
		}
		return s.CommitTx(ctx, tx, "k", benchPosition(first+n-1))
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkConsumer is the whole path: a Consumer reads a message from an
// in-process testserver and handles it in a transaction (INSERT and
// position), per message.
func BenchmarkConsumer(b *testing.B) {
	for _, exclusive := range []bool{false, true} {
		name := "plain"
		var opts []ConsumerOption
		if exclusive {
			name = "exclusive"
			opts = append(opts, WithExclusive(WithLeaseTTL(time.Minute)))
		}
		b.Run(name, func(b *testing.B) {
			s := openTest(b)
			client, stream := benchStream(b)
			table := pgx.Identifier{s.t.schemaName, "sink"}.Sanitize()
			ctx := context.Background()
			if _, err := s.Pool().Exec(ctx, `CREATE TABLE `+table+` (n int NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			c, err := NewConsumer[item](s, client, stream, "k", opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close(ctx)
			h := insertItem(table)
			for b.Loop() {
				if err := c.Handle(ctx, h); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// benchStream returns a stream with far more items than a benchmark takes
// (about a millisecond each).
func benchStream(b *testing.B) (*durable.Client, string) {
	b.Helper()
	return newStream(b, 30000, false)
}

// BenchmarkCommitPaired alternates the cases inside each op, so that the
// ratios hold on a loaded machine: one File.Save, one transaction of one
// message (pg-tx), one fenced transaction of one message, and one
// transaction of 10 messages. It reports each case's time per message and
// its ratio to the File store's.
func BenchmarkCommitPaired(b *testing.B) {
	ctx := context.Background()
	f, err := offsetstore.OpenFile(filepath.Join(b.TempDir(), "offsets.json"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := openTest(b)
	table := pgx.Identifier{s.t.schemaName, "sink"}.Sanitize()
	if _, err := s.Pool().Exec(ctx, `CREATE TABLE `+table+` (n int NOT NULL, data text NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	lease, err := s.AcquireLease(ctx, "fenced", WithLeaseTTL(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer lease.Release(ctx)
	var file, tx, fenced, batch time.Duration
	msg := 0
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		if err := f.Save(ctx, "k", benchPosition(i)); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		benchTx(b, s, nil, table, msg, 1)
		t2 := time.Now()
		benchTx(b, s, lease, table, msg, 1)
		t3 := time.Now()
		benchTx(b, s, nil, table, msg+1, 10)
		t4 := time.Now()
		msg += 11
		file, tx, fenced, batch = file+t1.Sub(t0), tx+t2.Sub(t1), fenced+t3.Sub(t2), batch+t4.Sub(t3)
	}
	n := float64(b.N)
	b.ReportMetric(float64(file.Nanoseconds())/n, "file-ns/msg")
	b.ReportMetric(float64(tx.Nanoseconds())/n, "pgtx-ns/msg")
	b.ReportMetric(float64(fenced.Nanoseconds())/n, "fenced-ns/msg")
	b.ReportMetric(float64(batch.Nanoseconds())/n/10, "batch10-ns/msg")
	b.ReportMetric(float64(tx)/float64(file), "pgtx/file")
	b.ReportMetric(float64(fenced)/float64(tx), "fenced/pgtx")
	b.ReportMetric(float64(batch)/10/float64(tx), "batch10/pgtx")
}
