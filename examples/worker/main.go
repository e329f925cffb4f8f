// Command worker runs several goroutine workers that append jobs to one
// stream, each through its own idempotent durable.Writer, and shows the rate.
//
//	go run ./examples/worker                                   # embedded test server, 2 s
//	go run ./examples/worker -count 100000                     # stop after 100000 jobs
//	go run ./examples/worker -url http://127.0.0.1:4437 -stream jobs
//
// -url is a server URL, as in every example (a URL without a path gets
// /v1/stream/, where `durable serve` keeps its streams), and -stream the name
// of the stream on it.
//
// Each worker has a stable producer ID (worker-0, worker-1, ...) and its epoch
// is kept in an offset file: every run takes the next epoch, so a worker left
// over from an earlier run (a zombie) is fenced off with ErrStaleEpoch instead
// of interleaving duplicates. Writers batch, pipeline and retry on their own;
// a retried batch is never appended twice.
//
// While it runs, a rate line is kept up to date on stderr when stderr is a
// terminal. At the end it prints a summary, then reads the stream back and
// checks that every job of this run is there exactly once, in each worker's
// order.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/examples/internal/exampleutil"
	"github.com/durablego/durable/offsetstore"
	"github.com/durablego/durable/testserver"
)

// Job is what the workers append.
type Job struct {
	Run    string `json:"run"` // random per run, to tell this run's jobs from others
	Worker int    `json:"worker"`
	N      int    `json:"n"` // 1, 2, 3, ... per worker
}

// config is the command line.
type config struct {
	URL       string // server URL; "" = embedded testserver
	Stream    string
	Workers   int
	Duration  time.Duration // how long to append (unless Count)
	Count     int           // jobs to append in total; 0 = until Duration
	EpochFile string        // "" = <os.TempDir()>/durable-worker/epochs
	Live      bool          // keep a rate line on stderr
}

// result is what the run did and found.
type result struct {
	Run      string
	Appended []int   // per worker: jobs that landed
	Epochs   []int64 // per worker
	Elapsed  time.Duration
	ReadBack int // jobs of this run read back from the stream
	Bad      int // jobs read back missing, repeated or out of order
}

// Total returns the jobs appended by all workers.
func (r result) Total() int {
	n := 0
	for _, a := range r.Appended {
		n += a
	}
	return n
}

func main() {
	var cfg config
	flag.StringVar(&cfg.URL, "url", "", "Durable Streams server URL (default: an embedded test server); a URL without a path gets /v1/stream/")
	flag.StringVar(&cfg.Stream, "stream", "jobs", "stream to append to (created if missing)")
	flag.IntVar(&cfg.Workers, "workers", 4, "concurrent workers, each with its own writer")
	flag.DurationVar(&cfg.Duration, "duration", 2*time.Second, "how long to append")
	flag.IntVar(&cfg.Count, "count", 0, "append this many jobs in total, then stop (instead of -duration)")
	flag.StringVar(&cfg.EpochFile, "epoch-file", "", "file keeping the workers' producer epochs (default: "+defaultEpochFile()+")")
	flag.Parse()
	cfg.Live = exampleutil.IsTerminal(os.Stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		stop()
		os.Exit(1)
	}
}

func defaultEpochFile() string { return filepath.Join(os.TempDir(), "durable-worker", "epochs") }

// run appends until cfg.Duration has passed, cfg.Count jobs were appended or
// ctx ends (Ctrl-C: a clean stop), then checks the stream.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (res result, err error) {
	if cfg.Workers < 1 || cfg.Count < 0 || cfg.Count == 0 && cfg.Duration <= 0 {
		return res, fmt.Errorf("need -workers ≥ 1 and a positive -count or -duration")
	}
	var srv *testserver.Server
	base := cfg.URL
	if base == "" {
		srv = testserver.New()
		defer srv.Close()
		base = srv.StreamURL("")
	} else if base, err = exampleutil.BaseURL(base); err != nil {
		return res, err
	}
	var landed atomic.Int64 // messages of the batches that landed
	client, err := durable.NewClient(base, durable.WithHooks(&landedCounter{n: &landed}))
	if err != nil {
		return res, err
	}
	stream := cfg.Stream
	if stream == "" {
		stream = "jobs"
	}
	_, err = client.Create(ctx, stream, durable.CreateOptions{ContentType: "application/json"})
	if err != nil && !errors.Is(err, durable.ErrStreamExists) {
		return res, err
	}
	info, err := client.Head(ctx, stream) // where this run's jobs start
	if err != nil {
		return res, err
	}

	epochFile := cfg.EpochFile
	if epochFile == "" {
		epochFile = defaultEpochFile()
		if err := os.MkdirAll(filepath.Dir(epochFile), 0o755); err != nil {
			return res, err
		}
	}
	epochs, err := offsetstore.OpenFile(epochFile)
	if err != nil {
		return res, err
	}
	defer epochs.Close()

	var runID [4]byte
	_, _ = rand.Read(runID[:])
	res.Run = hex.EncodeToString(runID[:])
	where := "an embedded test server"
	if srv == nil {
		where = base
	}
	bound := fmt.Sprintf("for %s", cfg.Duration)
	if cfg.Count > 0 {
		bound = fmt.Sprintf("%d jobs", cfg.Count)
	}
	fmt.Fprintf(stdout, "worker: %d workers appending to stream %s on %s, %s (run %s; epochs in %s)\n",
		cfg.Workers, stream, where, bound, res.Run, epochFile)

	// The workers.
	stopWriting := ctx
	if cfg.Count == 0 {
		var cancel context.CancelFunc
		stopWriting, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	res.Appended = make([]int, cfg.Workers)
	res.Epochs = make([]int64, cfg.Workers)
	errs := make([]error, cfg.Workers)
	began := time.Now()
	var wg sync.WaitGroup
	for i := range cfg.Workers {
		share := 0
		if cfg.Count > 0 {
			share = cfg.Count / cfg.Workers
			if i < cfg.Count%cfg.Workers {
				share++
			}
		}
		wg.Go(func() {
			res.Appended[i], res.Epochs[i], errs[i] = work(ctx, stopWriting, client, stream, epochs, res.Run, i, share)
		})
	}
	stopRate := func() {}
	if cfg.Live {
		stopRate = rateLine(stderr, &landed)
	}
	wg.Wait()
	stopRate()
	res.Elapsed = time.Since(began)
	if err := errors.Join(errs...); err != nil {
		return res, err
	}

	fmt.Fprintf(stdout, "worker: %d jobs in %.1fs (%.0f/s)\n", res.Total(), res.Elapsed.Seconds(), float64(res.Total())/res.Elapsed.Seconds())
	for i := range cfg.Workers {
		fmt.Fprintf(stdout, "  worker-%d  epoch %d  %d jobs\n", i, res.Epochs[i], res.Appended[i])
	}

	if ctx.Err() != nil {
		fmt.Fprintf(stdout, "worker: interrupted; every job queued before the interrupt landed\n")
		return res, nil
	}

	// The check: read this run's jobs back.
	checkBegan := time.Now()
	res.ReadBack, res.Bad, err = check(ctx, client, stream, durable.Offset(info.NextOffset), res)
	if err != nil {
		return res, err
	}
	if res.Bad != 0 || res.ReadBack != res.Total() {
		return res, fmt.Errorf("read back %d jobs of this run, %d missing, repeated or out of order", res.ReadBack, res.Bad)
	}
	fmt.Fprintf(stdout, "check:  read back %d jobs of this run in %.1fs: each once, in each worker's order\n", res.ReadBack, time.Since(checkBegan).Seconds())
	return res, nil
}

// work appends jobs until stop ends (or share jobs are written, if > 0), then
// closes the writer, which waits until every job has landed.
func work(ctx, stop context.Context, client *durable.Client, stream string, epochs offsetstore.EpochStore,
	run string, worker, share int) (appended int, epoch int64, err error) {
	w, err := durable.NewWriter(client, stream, durable.JSONCodec[Job]{},
		durable.WithProducerID(fmt.Sprintf("worker-%d", worker)),
		durable.WithEpochStore(epochs))
	if err != nil {
		return 0, 0, err
	}
	n := 0
	for share == 0 || n < share {
		if err := w.Write(stop, Job{Run: run, Worker: worker, N: n + 1}); err != nil {
			if stop.Err() != nil && errors.Is(err, stop.Err()) {
				break // time is up (or Ctrl-C): this job was not queued
			}
			w.Close(ctx)
			return n, w.Producer().Epoch, err
		}
		n++
	}
	// Land what is queued, even after Ctrl-C, within a bound.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := w.Close(cctx); err != nil {
		return 0, w.Producer().Epoch, err
	}
	return n, w.Producer().Epoch, nil
}

// check reads the stream from offset to its current tail and counts the jobs
// of this run, and those missing, repeated or out of order.
func check(ctx context.Context, client *durable.Client, stream string, from durable.Offset, res result) (readBack, bad int, err error) {
	r, err := durable.NewReader(client, stream, durable.JSONCodec[Job]{}, durable.WithStart(from), durable.WithLive(durable.LiveNone))
	if err != nil {
		return 0, 0, err
	}
	defer r.Close(ctx)
	next := make([]int, len(res.Appended))
	for i := range next {
		next[i] = 1
	}
	for m, err := range r.Messages(ctx) {
		if err != nil {
			return readBack, bad, err
		}
		j := m.Value
		if j.Run != res.Run {
			continue // another run's
		}
		readBack++
		if j.Worker < 0 || j.Worker >= len(next) || j.N != next[j.Worker] {
			bad++
			continue
		}
		next[j.Worker]++
	}
	return readBack, bad, nil
}

// rateLine keeps a rate line on w (a terminal) until the returned function is
// called.
func rateLine(w io.Writer, landed *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		began, last, lastAt := time.Now(), int64(0), time.Now()
		fmt.Fprint(w, "\r\033[Kworker: starting")
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case now := <-t.C:
				n := landed.Load()
				fmt.Fprintf(w, "\r\033[Kworker: %d jobs landed, %.0f/s now, %.1fs", n, float64(n-last)/now.Sub(lastAt).Seconds(), now.Sub(began).Seconds())
				last, lastAt = n, now
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// landedCounter is a durable.HookBatch counting the messages of batches
// that landed.
type landedCounter struct{ n *atomic.Int64 }

func (h *landedCounter) OnBatch(ev durable.BatchEvent) {
	if ev.Err == nil {
		h.n.Add(int64(ev.Messages))
	}
}
