package offsetstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// BenchmarkFileSave measures durable commits (write temp, fsync, rename,
// fsync dir) per second from one goroutine.
func BenchmarkFileSave(b *testing.B) {
	ctx := context.Background()
	f, err := OpenFile(filepath.Join(b.TempDir(), "offsets.json"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ResetTimer()
	for i := range b.N {
		if err := f.Save(ctx, "reader", Position{Offset: "0000000000000001_0000000000001234", Skip: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkFileSaveParallel measures saves per second when many goroutines
// save different keys at once, which the File coalesces into shared writes.
func BenchmarkFileSaveParallel(b *testing.B) {
	ctx := context.Background()
	f, err := OpenFile(filepath.Join(b.TempDir(), "offsets.json"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var id atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprint("reader-", id.Add(1))
		var i int64
		for pb.Next() {
			i++
			if err := f.Save(ctx, key, Position{Offset: "0000000000000001_0000000000001234", Skip: i}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	f.mu.Lock()
	writes := f.writes
	f.mu.Unlock()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
	b.ReportMetric(float64(writes)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkMemorySave measures Memory.Save.
func BenchmarkMemorySave(b *testing.B) {
	ctx := context.Background()
	m := NewMemory()
	b.ReportAllocs()
	for i := range b.N {
		if err := m.Save(ctx, "reader", Position{Offset: "0000000000000001_0000000000001234", Skip: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
}
