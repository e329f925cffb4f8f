//go:build linux

package durable

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/serveproc"
)

// The scale benchmarks (issue 17): N live Readers, or N Writers, on N
// streams of one `durable serve` running in another process, over HTTP/1.1
// and over cleartext HTTP/2 (h2c). Each reports what one idle Reader or
// Writer costs in this process (heap, goroutine stacks, goroutines, open
// sockets), then appends to random streams at a fixed rate, one append per
// op, and reports the latency percentiles (append → Next for Readers,
// WriteSync for Writers, in µs). ns/op is the fixed rate and is zeroed; run
// with a fixed op count:
//
//	go test -run '^$' -bench 'BenchmarkScale' -benchtime 400x -count 6 -timeout 60m .
//
// With DURABLE_SCALE_PROFILE=dir each case also writes the heap profile of
// its idle state there (go tool pprof -sample_index=inuse_space -top).

// scaleRate is the fixed rate of appends (or writes) of the active phase.
const scaleRate = 500 // per second

// scaleSizes are the numbers of Readers or Writers measured.
var scaleSizes = []int{100, 1_000, 10_000}

// scaleMsg is the message of the scale benchmarks: when it was sent, in
// nanoseconds since the benchmark's start (monotonic), and to which stream.
type scaleMsg struct {
	T int64 `json:"t"`
	I int   `json:"i"`
}

func BenchmarkScaleReaders(b *testing.B) {
	for _, proto := range []string{"h1", "h2c"} {
		for _, n := range scaleSizes {
			b.Run(fmt.Sprintf("proto=%s/readers=%d", proto, n), func(b *testing.B) { benchScaleReaders(b, proto, n) })
		}
	}
}

// BenchmarkScaleReadersSmallBuffers is the HTTP/1.1 case of
// BenchmarkScaleReaders with net/http's per-connection buffers cut from
// 4 KiB to 1 KiB each (Transport.ReadBufferSize and WriteBufferSize, given
// with WithHTTPClient): what an idle long-poll's connection costs in
// net/http's bufio, and what is left when it is smaller.
func BenchmarkScaleReadersSmallBuffers(b *testing.B) {
	for _, n := range scaleSizes[1:] {
		b.Run(fmt.Sprintf("proto=h1-buf1k/readers=%d", n), func(b *testing.B) { benchScaleReaders(b, "h1-buf1k", n) })
	}
}

func BenchmarkScaleWriters(b *testing.B) {
	for _, proto := range []string{"h1", "h2c"} {
		for _, n := range scaleSizes {
			b.Run(fmt.Sprintf("proto=%s/writers=%d", proto, n), func(b *testing.B) { benchScaleWriters(b, proto, n) })
		}
	}
}

// scaleSetup starts `durable serve` in another process, a Client on it
// (h2c or HTTP/1.1), and n JSON streams.
func scaleSetup(b *testing.B, proto string, n int) (*Client, func(int) string) {
	srv := serveproc.Start(b, "--h2c", "--long-poll-timeout", "30s")
	var opts []Option
	switch proto {
	case "h2c":
		opts = append(opts, WithUnencryptedHTTP2())
	case "h1-buf1k":
		tr := defaultTransport(false)
		tr.ReadBufferSize, tr.WriteBufferSize = 1<<10, 1<<10
		opts = append(opts, WithHTTPClient(&http.Client{Transport: tr}))
	}
	c, err := NewClient(srv.StreamURL(""), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.CloseIdleConnections)
	name := func(i int) string { return fmt.Sprintf("scale-%d", i) }
	scaleParallel(b, n, func(i int) error {
		_, err := c.Create(context.Background(), name(i), CreateOptions{ContentType: "application/json"})
		return err
	})
	c.CloseIdleConnections() // the sockets counted later are the Readers' or Writers'
	return c, name
}

// scaleParallel runs f(0..n-1) on 16 goroutines; any error fails b.
func scaleParallel(b *testing.B, n int, f func(i int) error) {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// footprint is what this process holds, after a full collection.
type footprint struct {
	heap, stack uint64
	goroutines  int
	sockets     int
}

func measure(b *testing.B) footprint {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return footprint{heap: ms.HeapAlloc, stack: ms.StackInuse, goroutines: runtime.NumGoroutine(), sockets: openSockets(b)}
}

// openSockets counts this process's open socket descriptors.
func openSockets(b *testing.B) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// reportFootprint returns a function that reports the cost of each of n
// Readers or Writers (what) between two footprints. It is called after
// b.Loop, which deletes the metrics reported before it.
func reportFootprint(b *testing.B, before, after footprint, n int, what string) func() {
	return func() {
		b.ReportMetric(float64(int64(after.heap)-int64(before.heap))/float64(n), "heap-B/"+what)
		b.ReportMetric(float64(int64(after.stack)-int64(before.stack))/float64(n), "stack-B/"+what)
		b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/"+what)
		b.ReportMetric(float64(after.sockets-before.sockets), "conns-"+what)
	}
}

// heapProfile writes the heap profile of the current state when
// DURABLE_SCALE_PROFILE names a directory.
func heapProfile(b *testing.B, state string) {
	dir := os.Getenv("DURABLE_SCALE_PROFILE")
	if dir == "" {
		return
	}
	name := strings.NewReplacer("/", "_", "=", "-").Replace(b.Name()) + "-" + state + ".pprof"
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// waitSteady waits until ready reports true and the goroutine count has
// stopped changing (the last requests are on their way and their
// connections open), at most a minute.
func waitSteady(b *testing.B, ready func() bool) {
	deadline := time.Now().Add(time.Minute)
	last, stable := -1, 0
	for stable < 5 {
		if time.Now().After(deadline) {
			b.Fatal("did not settle within a minute")
		}
		time.Sleep(100 * time.Millisecond)
		g := runtime.NumGoroutine()
		if ready() && g == last {
			stable++
		} else {
			stable = 0
		}
		last = g
	}
}

func benchScaleReaders(b *testing.B, proto string, n int) {
	c, name := scaleSetup(b, proto, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := measure(b)
	start := time.Now()
	var (
		mu  sync.Mutex
		lat []time.Duration
		got = make(chan struct{}, 1<<16)
	)
	readers := make([]*Reader[scaleMsg], n)
	var wg sync.WaitGroup
	for i := range readers {
		r, err := NewReader(c, name(i), JSONCodec[scaleMsg]{}, WithLive(LiveLongPoll), WithManualCommit())
		if err != nil {
			b.Fatal(err)
		}
		readers[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := r.Next(ctx)
				if err != nil {
					return
				}
				d := time.Since(start) - time.Duration(m.Value.T)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
				got <- struct{}{}
			}
		}()
	}
	defer func() {
		cancel()
		for _, r := range readers {
			r.Close(context.Background())
		}
		wg.Wait()
	}()
	waitSteady(b, func() bool {
		for _, r := range readers {
			if !r.Stats().UpToDate {
				return false
			}
		}
		return true
	})
	idle := reportFootprint(b, base, measure(b), n, "reader")
	heapProfile(b, "idle")

	tick := time.NewTicker(time.Second / scaleRate)
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(1, 2))
	sent := 0
	for b.Loop() {
		<-tick.C
		i := rng.IntN(n)
		body := fmt.Appendf(nil, `{"t":%d,"i":%d}`, time.Since(start), i)
		if _, err := c.Append(ctx, name(i), body, AppendOptions{ContentType: "application/json"}); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	b.StopTimer()
	timeout := time.After(time.Minute)
	for range sent {
		select {
		case <-got:
		case <-timeout:
			b.Fatalf("only some of %d messages delivered within a minute", sent)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	reportLatency(b, lat)
	idle()
}

func benchScaleWriters(b *testing.B, proto string, n int) {
	c, name := scaleSetup(b, proto, n)
	ctx := context.Background()
	base := measure(b)
	writers := make([]*Writer[scaleMsg], n)
	for i := range writers {
		w, err := NewWriter(c, name(i), JSONCodec[scaleMsg]{})
		if err != nil {
			b.Fatal(err)
		}
		writers[i] = w
	}
	defer func() {
		scaleParallel(b, n, func(i int) error { return writers[i].Close(ctx) })
	}()
	fresh := reportFootprint(b, base, measure(b), n, "writer-new")
	// Each Writer sends once, then has nothing to send: the idle state.
	scaleParallel(b, n, func(i int) error {
		_, err := writers[i].WriteSync(ctx, scaleMsg{I: i})
		return err
	})
	waitSteady(b, func() bool { return true })
	idle := reportFootprint(b, base, measure(b), n, "writer")
	heapProfile(b, "idle")

	start := time.Now()
	tick := time.NewTicker(time.Second / scaleRate)
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		mu  sync.Mutex
		lat []time.Duration
		wg  sync.WaitGroup
	)
	for b.Loop() {
		<-tick.C
		i := rng.IntN(n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if _, err := writers[i].WriteSync(ctx, scaleMsg{T: int64(time.Since(start)), I: i}); err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			lat = append(lat, time.Since(t0))
			mu.Unlock()
		}()
	}
	b.StopTimer()
	wg.Wait()
	reportLatency(b, lat)
	fresh()
	idle()
}
