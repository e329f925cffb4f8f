// Command quickstart shows durable's promise in a few seconds: writers append
// numbered events, a reader tails them into an offset file, the reader
// crashes mid-stream, a new reader resumes from the offset file, and the
// program checks that every event was seen exactly once.
//
//	go run ./examples/quickstart                             # embedded test server
//	go run ./examples/quickstart -url http://127.0.0.1:4437  # a real server
//
// -url is a server URL, as in every example (a URL without a path gets
// /v1/stream/, where `durable serve` keeps its streams); -stream names the
// stream to create on it.
//
// With no -url it starts an in-process testserver, and that server also drops
// a few append responses after applying them and fails a few reads, so the
// run shows the writers' idempotent retries and the reader's retries too.
//
// The last line is the verdict, computed from what the readers delivered:
//
//	quickstart: 500 events, 0 lost, 0 repeated (crash after 231, resumed from offset file)
//
// The exit status is 1 when anything was lost, repeated or out of order.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
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

// Event is one numbered event. Writer w appends the numbers w+1, w+1+W,
// w+1+2W, ... (W writers), so together they append 1..Events, each once.
type Event struct {
	N      int `json:"n"`
	Writer int `json:"writer"`
}

// config is the command line.
type config struct {
	URL        string // server URL; "" = embedded testserver
	Stream     string // stream name; "" = "quickstart" (embedded) or a fresh name
	Writers    int
	Events     int
	CrashAfter int           // events the first reader handles before it crashes; 0 = random
	Spread     time.Duration // the writers spread their appends over about this long
	Faults     bool          // embedded server only: inject dropped responses and failed reads
}

// result is what the readers actually saw.
type result struct {
	Events     int // events the writers appended
	Delivered  int // messages delivered by both readers
	Lost       int // events never delivered
	Repeated   int // deliveries of an event already delivered
	OutOfOrder int // events delivered before an earlier event of the same writer
	Unexpected int // messages that are not one of the events appended
	CrashAfter int
}

// errVerdict is returned when the verdict is not "0 lost, 0 repeated".
var errVerdict = errors.New("events were lost, repeated or reordered")

func main() {
	var cfg config
	flag.StringVar(&cfg.URL, "url", "", "Durable Streams server URL (default: an embedded test server); a URL without a path gets /v1/stream/")
	flag.StringVar(&cfg.Stream, "stream", "", `stream to create (default "quickstart" on the embedded server; on a real one a fresh name, deleted at the end)`)
	flag.IntVar(&cfg.Writers, "writers", 4, "concurrent writers")
	flag.IntVar(&cfg.Events, "events", 500, "events to append, in total")
	flag.IntVar(&cfg.CrashAfter, "crash-after", 0, "events the first reader handles before it crashes (default: random, mid-stream)")
	flag.DurationVar(&cfg.Spread, "spread", time.Second, "spread the appends over about this long, so the reader tails a live stream (0 = as fast as possible)")
	flag.BoolVar(&cfg.Faults, "faults", true, "embedded server: drop some append responses and fail some reads")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		stop()
		os.Exit(1)
	}
}

// run runs the whole demonstration, printing its narrative to out, and
// returns what the readers saw; the error is errVerdict if anything was lost,
// repeated or reordered.
func run(ctx context.Context, cfg config, out io.Writer) (res result, err error) {
	if cfg.Writers < 1 || cfg.Events < cfg.Writers {
		return res, fmt.Errorf("need at least 1 writer and as many events as writers")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// The server: embedded unless -url is given.
	var srv *testserver.Server
	base, stream := cfg.URL, cfg.Stream
	if base == "" {
		srv = testserver.New()
		defer srv.Close()
		base = srv.StreamURL("")
		if stream == "" {
			stream = "quickstart"
		}
		fmt.Fprintf(out, "server:   embedded test server at %s (use -url for a real one)\n", base)
	} else {
		if base, err = exampleutil.BaseURL(base); err != nil {
			return res, err
		}
		if stream == "" {
			stream = fmt.Sprintf("quickstart-%d", time.Now().UnixNano())
		}
		fmt.Fprintf(out, "server:   %s\n", base)
	}
	var hooks retryCounter // counts the retries of the writers and the readers
	client, err := durable.NewClient(base, durable.WithHooks(&hooks))
	if err != nil {
		return res, err
	}
	if _, err := client.Create(ctx, stream, durable.CreateOptions{ContentType: "application/json"}); err != nil {
		return res, fmt.Errorf("create stream: %w", err)
	}
	if srv == nil && cfg.Stream == "" { // a stream of our own on a real server: leave nothing behind
		defer client.Delete(context.WithoutCancel(ctx), stream)
	}

	// The offset file, in a fresh temporary directory.
	dir, err := os.MkdirTemp("", "durable-quickstart-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	offsetFile := filepath.Join(dir, "quickstart.offsets")
	fmt.Fprintf(out, "stream:   %s (JSON), %d events from %d writers; offset file %s\n", stream, cfg.Events, cfg.Writers, offsetFile)

	res.Events = cfg.Events
	res.CrashAfter = cfg.CrashAfter
	if res.CrashAfter <= 0 {
		res.CrashAfter = cfg.Events/4 + rand.N(cfg.Events/2+1)
	}
	if res.CrashAfter >= cfg.Events {
		return res, fmt.Errorf("-crash-after must be below -events")
	}

	// Faults on the embedded server: append responses dropped after the
	// append was applied (the writer cannot tell it landed, so it sends the
	// batch again; the server recognises the producer sequence and discards
	// the copy), and reads answered 503 (the reader backs off and retries).
	if srv != nil && cfg.Faults {
		srv.InjectFault(testserver.Fault{Path: stream, Method: http.MethodPost, Drop: true, AfterApply: true, Count: 2})
		srv.InjectFault(testserver.Fault{Path: stream, Method: http.MethodGet, Status: http.StatusServiceUnavailable, Count: 1})
		fmt.Fprintf(out, "faults:   the server will drop 2 append responses after applying the appends, and fail 1 read with 503\n")
	}

	// The writers, in the background. When all of them have landed every
	// event, the stream is closed, so the reader ends with io.EOF.
	var writersDone sync.WaitGroup
	writersDone.Go(func() {
		if err := write(ctx, client, stream, cfg); err != nil {
			cancel(fmt.Errorf("writers: %w", err))
			return
		}
		if srv != nil {
			srv.ClearFaults()
		}
		if _, err := client.CloseStream(ctx, stream, nil, durable.AppendOptions{}); err != nil {
			cancel(fmt.Errorf("close stream: %w", err))
		}
	})
	defer writersDone.Wait()

	// The reader, twice: the first one crashes, the second resumes.
	seen := newTally(cfg.Events, cfg.Writers)
	readerErr := readTwice(ctx, client, stream, offsetFile, res.CrashAfter, seen, &hooks.reads, out)
	if readerErr != nil {
		cancel(readerErr) // stop the writers too
	}
	writersDone.Wait()
	if cause := context.Cause(ctx); cause != nil {
		return res, cause // the first failure: a writer's, a reader's, or ctx's
	}

	fmt.Fprintf(out, "writers:  %d idempotent writers appended %d events and closed the stream; %s sent again after a failed request (the server keeps one copy)\n",
		cfg.Writers, cfg.Events, plural(int(hooks.writes.Load()), "batch"))
	res.Delivered, res.Lost, res.Repeated, res.OutOfOrder, res.Unexpected = seen.summary()
	fmt.Fprintf(out, "quickstart: %d events, %d lost, %d repeated (crash after %d, resumed from offset file)\n",
		res.Events, res.Lost, res.Repeated, res.CrashAfter)
	if res.OutOfOrder != 0 {
		fmt.Fprintf(out, "quickstart: %d events arrived before an earlier event of the same writer\n", res.OutOfOrder)
	}
	if res.Unexpected != 0 {
		fmt.Fprintf(out, "quickstart: %d messages were not events this run appended\n", res.Unexpected)
	}
	if res.Lost != 0 || res.Repeated != 0 || res.OutOfOrder != 0 || res.Unexpected != 0 {
		return res, errVerdict
	}
	return res, nil
}

// write runs the writers: each appends its share of the events through its
// own idempotent Writer and closes it, which waits until everything landed.
func write(ctx context.Context, client *durable.Client, stream string, cfg config) error {
	errs := make(chan error, cfg.Writers)
	var wg sync.WaitGroup
	for w := range cfg.Writers {
		wg.Go(func() {
			errs <- writeOne(ctx, client, stream, w, cfg)
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func writeOne(ctx context.Context, client *durable.Client, stream string, w int, cfg config) error {
	wr, err := durable.NewWriter(client, stream, durable.JSONCodec[Event]{},
		durable.WithProducerID(fmt.Sprintf("quickstart-writer-%d", w)))
	if err != nil {
		return err
	}
	var tick <-chan time.Time
	if cfg.Spread > 0 {
		t := time.NewTicker(cfg.Spread * time.Duration(cfg.Writers) / time.Duration(cfg.Events))
		defer t.Stop()
		tick = t.C
	}
	for n := w + 1; n <= cfg.Events; n += cfg.Writers {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				wr.Close(ctx)
				return ctx.Err()
			}
		}
		if err := wr.Write(ctx, Event{N: n, Writer: w}); err != nil {
			wr.Close(ctx)
			return err
		}
	}
	return wr.Close(ctx) // sends what is left; nil only if every event landed
}

// readTwice tails the stream with a reader that commits every event to the
// offset file and "crashes" after crashAfter events; then it opens the
// offset file again and tails with a new reader until the stream ends.
//
// retries counts the read requests that failed and were retried.
func readTwice(ctx context.Context, client *durable.Client, stream, offsetFile string, crashAfter int, seen *tally, retries *atomic.Int64, out io.Writer) error {
	const key = "quickstart"

	// First run.
	store, err := offsetstore.OpenFile(offsetFile)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "reader 1: tailing from the start, committing each event to the offset file\n")
	// The first reader lives in its own context, as if in its own process.
	ctx1, die := context.WithCancel(ctx)
	r1, err := durable.NewReader(client, stream, durable.JSONCodec[Event]{},
		durable.WithStore(store), durable.WithKey(key), durable.WithManualCommit())
	if err != nil {
		die()
		store.Close()
		return err
	}
	for range crashAfter {
		m, err := r1.Next(ctx1)
		if err != nil {
			die()
			store.Close()
			return fmt.Errorf("reader 1: %w", err)
		}
		seen.add(m.Value)
		if err := r1.Commit(ctx1, m.Position); err != nil {
			die()
			store.Close()
			return fmt.Errorf("reader 1: %w", err)
		}
	}
	// The crash: the reader's context ends and the reader is dropped without
	// Close, so it saves nothing more. A dying process's offset file lock is
	// released by the operating system; here the File is closed instead,
	// which writes nothing (every Commit above was already on disk when it
	// returned) and only releases the lock.
	crashed := r1.Stats().Position
	die() // r1 is dropped here, never closed
	if err := store.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "crash:    reader 1 dropped without Close after event %d, at %s\n", crashAfter, describe(crashed))
	fmt.Fprintf(out, "          (its offset file is closed only to release its lock, as the OS does for a killed process; every commit was already on disk)\n")

	// Second run: a new reader, a freshly opened offset file.
	store, err = offsetstore.OpenFile(offsetFile)
	if err != nil {
		return err
	}
	defer store.Close()
	pos, ok, err := store.Load(ctx, key)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the offset file holds no position after the crash")
	}
	fmt.Fprintf(out, "restart:  reader 2 resumes from the offset file: %s\n", describe(pos))
	r2, err := durable.NewReader(client, stream, durable.JSONCodec[Event]{},
		durable.WithStore(store), durable.WithKey(key), durable.WithManualCommit())
	if err != nil {
		return err
	}
	defer r2.Close(ctx)
	n := 0
	for {
		m, err := r2.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reader 2: %w", err)
		}
		seen.add(m.Value)
		if err := r2.Commit(ctx, m.Position); err != nil {
			return fmt.Errorf("reader 2: %w", err)
		}
		n++
	}
	fmt.Fprintf(out, "reader 2: %d more events, then the end of the stream (io.EOF); the readers retried %s\n", n, plural(int(retries.Load()), "failed read"))
	return nil
}

// plural returns "1 thing" or "n things".
func plural(n int, thing string) string {
	switch {
	case n == 1:
		return "1 " + thing
	case thing[len(thing)-1] == 'h':
		return fmt.Sprintf("%d %ses", n, thing)
	default:
		return fmt.Sprintf("%d %ss", n, thing)
	}
}

// describe prints a position for people.
func describe(p durable.Position) string {
	if p.Skip == 0 {
		return fmt.Sprintf("offset %s", p.Offset)
	}
	return fmt.Sprintf("offset %s + %d events", p.Offset, p.Skip)
}

// tally counts deliveries per event number and checks each writer's order.
type tally struct {
	count []int // count[n] = deliveries of event n
	last  []int // last[w] = last event number delivered from writer w
	bad   int   // deliveries with a number outside 1..Events or from the wrong writer
	order int   // deliveries of an event before an earlier one of its writer
}

func newTally(events, writers int) *tally {
	return &tally{count: make([]int, events+1), last: make([]int, writers)}
}

func (t *tally) add(e Event) {
	if e.N < 1 || e.N >= len(t.count) || e.Writer < 0 || e.Writer >= len(t.last) || (e.N-1)%len(t.last) != e.Writer {
		t.bad++
		return
	}
	t.count[e.N]++
	if e.N < t.last[e.Writer] {
		t.order++
	}
	t.last[e.Writer] = e.N
}

func (t *tally) summary() (delivered, lost, repeated, outOfOrder, unexpected int) {
	for _, c := range t.count[1:] {
		delivered += c
		if c == 0 {
			lost++
		} else {
			repeated += c - 1
		}
	}
	return delivered + t.bad, lost, repeated, t.order, t.bad
}

// retryCounter is a durable.HookRetry counting the retries of the readers
// and of the writers: the writers' resends after a failure (here: a dropped
// response) apart from resends of a batch that overtook an earlier one
// (answered with a sequence gap).
type retryCounter struct{ reads, writes, gaps atomic.Int64 }

func (h *retryCounter) OnRetry(ev durable.RetryEvent) {
	switch {
	case ev.Recovered: // the end of an outage
	case ev.Op == "read":
		h.reads.Add(1)
	case ev.Op != "write":
	case errors.Is(ev.Err, durable.ErrProducerSeqGap):
		h.gaps.Add(1)
	default:
		h.writes.Add(1)
	}
}
