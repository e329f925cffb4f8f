// Command subscriber shows a pool of workers processing every stream under
// orders/* through one subscription: no Reader per stream, no offsets of
// its own. 50 order streams are written while three workers share the
// subscription; one of them stops midway and another joins; a few orders
// fail once in the handler and come back; the server fails a few acks.
//
//	go run ./examples/subscriber                           # embedded test server
//	go run ./examples/subscriber -url http://127.0.0.1:4437  # durable serve --subscriptions
//
// -url is a server URL, as in every example (a URL without a path gets
// /v1/stream/, where `durable serve` keeps its streams); the server must
// serve subscriptions.
//
// The server keeps one acked offset per stream and hands the lease to one
// worker at a time; each worker reads the streams with pending orders from
// their acked offsets and handles each stream's orders in order (several
// streams at once). The last line is the verdict, computed from what the
// handlers saw:
//
//	subscriber: 5000 orders on 50 streams, 0 lost, 0 out of order (5012 handled: 12 again after 5 handler errors)
//
// The exit status is 1 when an order was lost or handled out of order.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/examples/internal/exampleutil"
	"github.com/durablego/durable/subscription"
	"github.com/durablego/durable/testserver"
)

// Order is what the streams hold.
type Order struct {
	Stream string `json:"stream"`
	N      int    `json:"n"` // 1, 2, 3, ... per stream
}

// config is the command line.
type config struct {
	URL     string // server URL; "" = embedded testserver
	Streams int
	Orders  int // per stream
	Workers int
	Spread  time.Duration // the writers spread their appends over about this long
}

// result is what the handlers saw.
type result struct {
	Orders      int // orders written
	Handled     int // handler calls that returned nil
	Lost        int // orders never handled
	OutOfOrder  int // orders handled before an earlier order of their stream
	Failed      int // handler errors (each order fails at most once)
	WorkersUsed int
}

// errVerdict is returned when an order was lost or handled out of order.
var errVerdict = errors.New("orders were lost or handled out of order")

func main() {
	cfg := config{Streams: 50, Orders: 100, Workers: 3, Spread: 2 * time.Second}
	flag.StringVar(&cfg.URL, "url", "", "Durable Streams server URL with subscriptions (default: an embedded test server); a URL without a path gets /v1/stream/")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "subscriber:", err)
		stop()
		os.Exit(1)
	}
}

// run runs the whole demonstration, printing its narrative to out.
func run(ctx context.Context, cfg config, out io.Writer) (res result, err error) {
	if cfg.Streams < 1 || cfg.Orders < 1 || cfg.Workers < 2 {
		return res, errors.New("need at least 1 stream, 1 order and 2 workers")
	}
	d, err := setUp(ctx, cfg, out)
	if err != nil {
		return res, err
	}
	defer d.tearDown(ctx)

	// The workers: as many processes would, each claims the lease when it
	// is free and works the streams with pending orders, 4 at a time.
	seen := newTally(d.streams, cfg.Orders)
	p := &pool{client: d.client, id: d.id, handle: seen.handle, errs: make(chan error, cfg.Workers+1)}
	defer p.stopAll()
	for n := 1; n <= cfg.Workers; n++ {
		p.start(ctx, n)
	}
	fmt.Fprintf(out, "workers:     %d workers share the subscription (lease 2 s)\n", cfg.Workers)

	// The writers, and midway a rolling restart: worker-1 stops (it acks
	// what it handled and hands its lease back) and worker-N+1 joins.
	written := make(chan error, 1)
	go func() { written <- write(ctx, d.client, d.streams, cfg) }()
	restart := time.After(cfg.Spread / 2)
	for done := false; !done; {
		select {
		case err := <-written:
			if err != nil {
				return res, err
			}
			done = true
		case <-restart:
			p.stop(0)
			p.start(ctx, cfg.Workers+1)
			fmt.Fprintf(out, "restart:     worker-1 stops midway (progress acked, lease handed back); worker-%d joins\n", cfg.Workers+1)
		case err := <-p.errs:
			return res, err
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	fmt.Fprintf(out, "writers:     %d orders appended (%d per stream)\n", cfg.Streams*cfg.Orders, cfg.Orders)

	// Done when the subscription has acked every stream to its tail.
	if err := waitAcked(ctx, d.client, d.sub, d.streams, p.errs); err != nil {
		return res, err
	}
	res = seen.result()
	res.WorkersUsed = cfg.Workers + 1
	fmt.Fprintf(out, "acked:       every stream acked to its tail by the subscription\n")
	fmt.Fprintf(out, "subscriber: %d orders on %d streams, %d lost, %d out of order (%d handled: %d again after %d handler errors)\n",
		res.Orders, cfg.Streams, res.Lost, res.OutOfOrder, res.Handled, res.Handled-(res.Orders-res.Lost), res.Failed)
	if res.Lost != 0 || res.OutOfOrder != 0 {
		return res, errVerdict
	}
	return res, nil
}

// demo is what setUp made: the server (embedded, or nil), the Client, the
// streams and the subscription.
type demo struct {
	srv     *testserver.Server
	client  *durable.Client
	streams []string
	id      string
	sub     *subscription.Subscription
	created []string // streams to delete at the end (real server only)
}

// setUp starts the embedded server (unless cfg.URL names one) and creates
// the streams, the wake stream and the subscription. A run on a real
// server uses names of its own and deletes them at the end.
func setUp(ctx context.Context, cfg config, out io.Writer) (d *demo, err error) {
	d = &demo{}
	defer func() {
		if err != nil {
			d.tearDown(ctx)
		}
	}()
	base := cfg.URL
	if base == "" {
		d.srv = testserver.New(testserver.WithSubscriptions(true))
		base = d.srv.StreamURL("")
		fmt.Fprintf(out, "server:      embedded test server at %s (use -url for a real one)\n", base)
	} else if base, err = exampleutil.BaseURL(base); err != nil {
		return d, err
	}
	if d.client, err = durable.NewClient(base); err != nil {
		return d, err
	}
	prefix, wake, id := "orders", "wake/orders", "order-processor"
	if d.srv == nil {
		tag := fmt.Sprintf("%d", time.Now().UnixNano())
		prefix, wake, id = "orders-"+tag, "wake/orders-"+tag, "order-processor-"+tag
	}
	d.id = id
	for i := range cfg.Streams {
		d.streams = append(d.streams, fmt.Sprintf("%s/%03d", prefix, i))
	}
	for _, s := range append([]string{wake}, d.streams...) {
		if _, err := d.client.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"}); err != nil {
			return d, fmt.Errorf("create %s: %w", s, err)
		}
		d.created = append(d.created, s)
	}
	if d.sub, err = subscription.Open(d.client, id); err != nil {
		return d, err
	}
	if _, _, err := d.sub.Create(ctx, subscription.Config{
		Type: subscription.PullWake, Pattern: prefix + "/*", WakeStream: wake,
		LeaseTTL: 2 * time.Second, Description: "example order processor",
	}); err != nil {
		return d, fmt.Errorf("create subscription: %w", err)
	}
	fmt.Fprintf(out, "subscription: %s over %s/* (%d streams), wake events on %s\n", id, prefix, cfg.Streams, wake)
	if d.srv != nil {
		d.srv.InjectFault(testserver.Fault{Path: "__ds/subscriptions/" + id + "/ack", Method: http.MethodPost,
			Status: http.StatusServiceUnavailable, Count: 3})
		fmt.Fprintf(out, "faults:      the server will fail 3 acks with 503 (the workers retry them)\n")
	}
	return d, nil
}

// tearDown deletes what a run on a real server made, or closes the
// embedded server.
func (d *demo) tearDown(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if d.srv != nil {
		d.srv.Close()
	} else if d.client != nil {
		if d.sub != nil {
			_ = d.sub.Delete(ctx)
		}
		for _, s := range d.created {
			_ = d.client.Delete(ctx, s)
		}
	}
	if d.client != nil {
		d.client.CloseIdleConnections()
	}
}

// pool runs the workers, each in its own context (as in its own process).
type pool struct {
	client *durable.Client
	id     string
	handle subscription.Handler[Order]
	errs   chan error
	wg     sync.WaitGroup
	stops  []context.CancelFunc
}

// start starts worker-n.
func (p *pool) start(ctx context.Context, n int) {
	wctx, stop := context.WithCancel(ctx)
	p.stops = append(p.stops, stop)
	w, err := subscription.NewWorker(p.client, p.id, p.handle, subscription.WithName(fmt.Sprintf("worker-%d", n)),
		subscription.WithConcurrency(4), subscription.WithAckInterval(100*time.Millisecond),
		subscription.WithPollInterval(500*time.Millisecond))
	if err != nil {
		p.errs <- err
		return
	}
	p.wg.Go(func() {
		if err := w.Run(wctx); err != nil {
			p.errs <- fmt.Errorf("worker-%d: %w", n, err)
		}
	})
}

// stop stops the i-th worker started: it acks what it handled and hands
// its lease back.
func (p *pool) stop(i int) { p.stops[i]() }

// stopAll stops every worker and waits for them.
func (p *pool) stopAll() {
	for _, stop := range p.stops {
		stop()
	}
	p.wg.Wait()
}

// write appends orders 1..cfg.Orders to every stream, one idempotent
// Writer per stream, spread over about cfg.Spread.
func write(ctx context.Context, client *durable.Client, streams []string, cfg config) error {
	writers := make([]*durable.Writer[Order], len(streams))
	for i, s := range streams {
		w, err := durable.NewWriter(client, s, durable.JSONCodec[Order]{})
		if err != nil {
			return err
		}
		writers[i] = w
	}
	tick := time.NewTicker(max(cfg.Spread/time.Duration(cfg.Orders), time.Millisecond))
	defer tick.Stop()
	var errs []error
	for n := 1; n <= cfg.Orders && len(errs) == 0; n++ {
		for i, w := range writers {
			if err := w.Write(ctx, Order{Stream: streams[i], N: n}); err != nil {
				errs = append(errs, err)
				break
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
	}
	for _, w := range writers {
		errs = append(errs, w.Close(ctx)) // nil only when every order landed
	}
	return errors.Join(errs...)
}

// waitAcked waits until every stream's acked offset is its tail.
func waitAcked(ctx context.Context, client *durable.Client, sub *subscription.Subscription, streams []string, errs <-chan error) error {
	tails := map[string]durable.Offset{}
	for _, s := range streams {
		h, err := client.Head(ctx, s)
		if err != nil {
			return err
		}
		tails[s] = h.NextOffset
	}
	for {
		info, err := sub.Get(ctx)
		if err != nil {
			return err
		}
		behind := 0
		for _, s := range streams {
			if l, ok := info.Link(s); !ok || l.Acked != tails[s] {
				behind++
			}
		}
		if behind == 0 {
			return nil
		}
		select {
		case err := <-errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tally records what the handlers saw.
type tally struct {
	orders int
	mu     sync.Mutex
	max    map[string]int          // highest order handled per stream
	seen   map[string]map[int]bool // orders handled per stream
	failed map[string]map[int]bool // orders that failed once
	res    result
}

func newTally(streams []string, orders int) *tally {
	t := &tally{orders: orders, max: map[string]int{}, seen: map[string]map[int]bool{}, failed: map[string]map[int]bool{}}
	for _, s := range streams {
		t.seen[s], t.failed[s] = map[int]bool{}, map[int]bool{}
	}
	t.res.Orders = len(streams) * orders
	return t
}

// errFlaky is the handler's transient failure.
var errFlaky = errors.New("payment service timed out")

// handle is the workers' handler: the middle order of the streams whose
// name ends in 7 fails the first time, to show that a failed order comes
// back. An order handled past one its stream has not had yet is out of
// order.
func (t *tally) handle(_ context.Context, m subscription.Message[Order]) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := m.Value
	if o.N == t.orders/2 && strings.HasSuffix(o.Stream, "7") && !t.failed[o.Stream][o.N] {
		t.failed[o.Stream][o.N] = true
		t.res.Failed++
		return errFlaky
	}
	if o.N > t.max[o.Stream]+1 {
		t.res.OutOfOrder++
	}
	t.max[o.Stream] = max(t.max[o.Stream], o.N)
	t.seen[o.Stream][o.N] = true
	t.res.Handled++
	return nil
}

// result returns the counts.
func (t *tally) result() result {
	t.mu.Lock()
	defer t.mu.Unlock()
	res := t.res
	for _, seen := range t.seen {
		for n := 1; n <= t.orders; n++ {
			if !seen[n] {
				res.Lost++
			}
		}
	}
	return res
}
