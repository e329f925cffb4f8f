// Command tail follows a stream and prints one line per message, saving its
// position in an offset file so that the next run carries on where this one
// stopped. Ctrl-C (SIGINT) or SIGTERM saves the position and exits cleanly.
//
//	go run ./examples/tail                                             # demo: embedded server + writer
//	go run ./examples/tail -url http://127.0.0.1:4437 -stream orders   # a stream on a real server
//
// -url is a server URL, as in every example (a URL without a path gets
// /v1/stream/, where `durable serve` keeps its streams), and -stream the
// name of the stream on it.
//
// Messages go to stdout (for JSON streams one message per line, for other
// streams the bytes of each read); status goes to stderr.
//
// With no -url the program runs its own test server, kept on disk next to the
// offset file, and a background writer that appends a tick every half second
// while the program runs. Run it, stop it with Ctrl-C, and run it again: the
// second run prints nothing the first one printed and skips nothing. It goes
// on right after the last tick the first run printed (with the ticks of the
// first run's writer that the first run had not printed yet, if any), then
// prints the ticks of its own writer (run 1, n = 1, 2, ...).
//
// The position is committed once a second, whenever the reader has caught up,
// and on exit (the Reader's default interval commit): a clean stop repeats
// nothing; after a kill -9 the messages printed in the last second before the
// kill are printed again (at-least-once). See examples/quickstart for a
// commit after every message.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/examples/internal/exampleutil"
	"github.com/durablego/durable/offsetstore"
	"github.com/durablego/durable/testserver"
)

// config is the command line.
type config struct {
	URL        string // server URL; "" = the demo on an embedded server
	Stream     string // stream name on the server of URL
	OffsetFile string // "" = <Dir>/tail.offsets
	Key        string // key in the offset file; "" = the stream's name
	From       string // start | now | an offset: where to start with no saved position
	Live       string // long-poll | sse | auto
	Dir        string // demo state (server data, offset file); "" = <os.TempDir()>/durable-tail
	Every      time.Duration
}

// Tick is what the demo writer appends.
type Tick struct {
	Run int64  `json:"run"` // the demo writer's producer epoch: one per run
	N   int    `json:"n"`
	At  string `json:"at"`
}

func main() {
	var cfg config
	flag.StringVar(&cfg.URL, "url", "", "Durable Streams server URL (default: an embedded test server with a demo stream); a URL without a path gets /v1/stream/")
	flag.StringVar(&cfg.Stream, "stream", "", "stream to tail, on the server of -url")
	flag.StringVar(&cfg.OffsetFile, "offset-file", "", "offset file (default: tail.offsets in "+defaultDir()+")")
	flag.StringVar(&cfg.Key, "key", "", "key of the position in the offset file (default: the stream's name)")
	flag.StringVar(&cfg.From, "from", "start", "where to start when the offset file has no position: start, now or an offset")
	flag.StringVar(&cfg.Live, "live", "long-poll", "how to wait for new messages: long-poll, sse or auto")
	flag.DurationVar(&cfg.Every, "every", 500*time.Millisecond, "demo: how often the embedded writer appends")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tail:", err)
		stop()
		os.Exit(1)
	}
}

func defaultDir() string { return filepath.Join(os.TempDir(), "durable-tail") }

// run tails until ctx ends (nil: a clean stop), the stream ends (nil) or
// a permanent error.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (err error) {
	live := durable.LiveMode(cfg.Live)
	switch live {
	case durable.LiveLongPoll, durable.LiveSSE, durable.LiveAuto:
	default:
		return fmt.Errorf("-live %q: want long-poll, sse or auto", cfg.Live)
	}
	if (cfg.URL == "") != (cfg.Stream == "") {
		return errors.New("-url and -stream go together (neither: the demo)")
	}
	start := durable.Offset(cfg.From)
	switch cfg.From {
	case "start":
		start = durable.OffsetStart
	case "now":
		start = durable.OffsetNow
	}
	dir := cfg.Dir
	if dir == "" {
		dir = defaultDir()
	}
	offsetFile := cfg.OffsetFile
	if offsetFile == "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		offsetFile = filepath.Join(dir, "tail.offsets")
	}
	store, err := offsetstore.OpenFile(offsetFile)
	if errors.Is(err, offsetstore.ErrLocked) {
		return fmt.Errorf("%w (is another tail running with this offset file?)", err)
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); err == nil {
			err = cerr
		}
	}()

	var client *durable.Client
	stream, key := cfg.Stream, cfg.Key
	if cfg.URL != "" {
		base, err := exampleutil.BaseURL(cfg.URL)
		if err != nil {
			return err
		}
		if client, err = durable.NewClient(base); err != nil {
			return err
		}
	} else { // the demo: an embedded server and a writer
		srv, demoClient, stopWriter, err := startDemo(ctx, filepath.Join(dir, "server"), store, cfg.Every, stderr)
		if err != nil {
			return err
		}
		defer srv.Close()
		defer func() {
			if werr := stopWriter(); err == nil {
				err = werr
			}
		}()
		client, stream = demoClient, "demo"
	}
	if key == "" {
		// The stream's name: the position stays valid when the server is
		// reached under another host name or port.
		key = stream
	}

	r, err := durable.NewReader(client, stream, durable.BytesCodec{},
		durable.WithStore(store), durable.WithKey(key), durable.WithStart(start), durable.WithLive(live))
	if err != nil {
		return err
	}
	if pos, ok, err := store.Load(ctx, key); err != nil {
		return err
	} else if ok {
		fmt.Fprintf(stderr, "tail: resuming %s at %s (offset file %s); Ctrl-C to stop\n", stream, describe(pos), offsetFile)
	} else {
		fmt.Fprintf(stderr, "tail: tailing %s from %s (offset file %s); Ctrl-C to stop\n", stream, cfg.From, offsetFile)
	}

	n := 0
	for {
		m, err := r.Next(ctx)
		if err != nil {
			// Close saves the position of the last message handled (every
			// message printed: Next was called again after it), within a
			// few seconds even after Ctrl-C.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			cerr := r.Close(cctx)
			cancel()
			pos := r.Stats().Committed
			switch {
			case ctx.Err() != nil:
				fmt.Fprintf(stderr, "tail: stopped after %d messages; saved %s; run again to resume\n", n, describe(pos))
				return cerr
			case errors.Is(err, io.EOF):
				fmt.Fprintf(stderr, "tail: the stream is closed; %d messages; saved %s\n", n, describe(pos))
				return cerr
			default:
				return errors.Join(err, cerr)
			}
		}
		if _, err := fmt.Fprintf(stdout, "%s\n", bytes.TrimSuffix(m.Data, []byte("\n"))); err != nil {
			r.Close(ctx)
			return err // stdout is gone: the last line was not handled
		}
		n++
	}
}

// startDemo starts the embedded server (its streams kept in dataDir, so that
// they outlive the run like a real server's) and a writer appending a Tick
// every interval until stopWriter is called. The writer's producer epoch is
// kept in the offset file, so each run gets the next epoch: Tick.Run.
func startDemo(ctx context.Context, dataDir string, epochs offsetstore.EpochStore, every time.Duration, stderr io.Writer) (
	srv *testserver.Server, client *durable.Client, stopWriter func() error, err error,
) {
	const producer = "tail-demo-writer"
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, nil, nil, err
	}
	// The epoch the writer will take (Writer.Epoch is final only once its
	// first batch has landed, and we want it in the first Tick).
	run, ok, err := epochs.LoadEpoch(ctx, producer)
	if err != nil {
		return nil, nil, nil, err
	}
	if ok {
		run++
	}
	srv = testserver.New(testserver.WithDataDir(dataDir))
	client, err = durable.NewClient(srv.StreamURL(""))
	if err == nil {
		_, err = client.Create(ctx, "demo", durable.CreateOptions{ContentType: "application/json"})
	}
	var w *durable.Writer[Tick]
	if err == nil {
		w, err = durable.NewWriter(client, "demo", durable.JSONCodec[Tick]{},
			durable.WithProducerID(producer), durable.WithEpochStore(epochs))
	}
	if err != nil {
		srv.Close()
		return nil, nil, nil, err
	}
	fmt.Fprintf(stderr, "tail: demo: embedded test server (streams kept in %s); writer run %d appends every %s\n", dataDir, run, every)

	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-wctx.Done():
				return
			case now := <-t.C:
				if err := w.Write(wctx, Tick{Run: run, N: n, At: now.Format("15:04:05.000")}); err != nil {
					if wctx.Err() == nil {
						writeErr = err
						cancel()
					}
					return
				}
			}
		}
	})
	stopWriter = func() error {
		cancel()
		wg.Wait()
		// Land what was written, even though ctx has ended.
		cctx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer done()
		return errors.Join(writeErr, w.Close(cctx))
	}
	return srv, client, stopWriter, nil
}

// describe prints a position for people.
func describe(p durable.Position) string {
	switch {
	case p.Offset == "":
		return "no position"
	case p.Skip == 0:
		return "offset " + p.Offset
	default:
		return fmt.Sprintf("offset %s + %d messages", p.Offset, p.Skip)
	}
}
