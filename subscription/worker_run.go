package subscription

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/retry"
)

// ErrWorkerRunning is returned by Run while another Run of the same
// Worker is under way.
var ErrWorkerRunning = errors.New("subscription: worker already running")

// Run works the subscription until ctx ends (it then acks the progress
// of the wake in hand, releases it, and returns nil) or a permanent error
// stops it: the subscription does not exist or is not pull-wake, the
// server refuses the Client's credentials, or another failure no retry
// can mend; that error is returned. Handler errors, fenced wakes and
// transient failures do not stop Run. One Run at a time per Worker.
func (w *Worker[T]) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return ErrWorkerRunning
	}
	w.running = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}()

	wakeStreams := map[string][]string{} // wake stream → subscription ids
	signals := map[string]chan struct{}{}
	for _, s := range w.subs {
		info, err := w.info(ctx, s)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if info.Type != PullWake {
			return &Error{Op: "worker", Subscription: s.id, Err: fmt.Errorf("%w: a Worker needs a pull-wake subscription, this one is %q", ErrInvalidRequest, info.Type)}
		}
		signals[s.id] = make(chan struct{}, 1)
		if w.cfg.followWakes && info.WakeStream != "" {
			wakeStreams[info.WakeStream] = append(wakeStreams[info.WakeStream], s.id)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	for stream := range wakeStreams {
		// The wake stream's tail is taken before the first claim, so that
		// no wake event falls between a claim that found no work and the
		// start of the tailing.
		from := w.wakeTail(ctx, stream)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.follow(ctx, stream, from, signals)
		}()
	}
	for _, s := range w.subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.loop(ctx, s, signals[s.id]); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// info reads s, riding out transient failures on the WithRetry schedule
// (a server restarting as the workers start).
func (w *Worker[T]) info(ctx context.Context, s *Subscription) (*Info, error) {
	var info *Info
	u, _ := w.l.URL(s.path(""))
	err := retry.Do(ctx, retry.NewSchedule(w.cfg.retry), func(ctx context.Context) error {
		var err error
		info, err = s.Get(ctx)
		return err
	}, func(err error) (bool, time.Duration) { return w.l.Classify(err, true) }, w.l.Notify(ctx, "subscription get", u))
	return info, err
}

// loop claims and works one subscription until ctx ends or a permanent
// error. signal receives a value when a wake event for it arrives. Waits
// after a failed claim and after a handler error follow the retry
// engine's schedule (WithRetry); a wait for work lasts until a wake event
// or the poll interval.
func (w *Worker[T]) loop(ctx context.Context, s *Subscription, signal <-chan struct{}) error {
	timer := time.NewTimer(w.cfg.poll)
	defer timer.Stop()
	wait := func(d time.Duration) {
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
		case <-signal:
		case <-timer.C:
		}
	}
	claims, handlers := retry.NewSchedule(w.cfg.retry), retry.NewSchedule(w.cfg.retry)
	u, _ := w.l.URL(s.path("claim"))
	notify := w.l.Notify(ctx, "subscription claim", u)
	for ctx.Err() == nil {
		// Claim only with room to work: a lease held without a free slot,
		// or beyond WithMaxLeases, would keep other workers from a shard
		// they could work.
		if w.leases.acquire(ctx) != nil {
			return nil
		}
		if w.eng.slots.room(ctx) != nil {
			w.leases.release()
			return nil
		}
		sent := time.Now()
		wake, err := s.Claim(ctx, w.cfg.name)
		if err != nil {
			w.leases.release()
		}
		if err == nil || errors.Is(err, ErrAlreadyClaimed) || errors.Is(err, ErrNoPendingWork) {
			if claims.Failures() > 0 {
				notify(retry.Event{Attempt: claims.Failures(), Recovered: true, Elapsed: claims.Since()})
			}
			claims.Reset()
		}
		switch {
		case err == nil:
			handlerErr := w.work(ctx, s, wake, sent)
			if handlerErr == nil {
				handlers.Reset()
				continue
			}
			d, ok := handlers.Next(0)
			if !ok {
				return handlerErr
			}
			wait(d)
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrAlreadyClaimed), errors.Is(err, ErrNoPendingWork):
			wait(w.cfg.poll)
		default:
			// A claim is safe to try again from here: at worst a claim
			// that reached the server holds the lease until it runs out.
			retryable, floor := w.l.Classify(err, true)
			if !retryable {
				return err
			}
			d, ok := claims.Next(floor)
			if !ok {
				return err
			}
			notify(retry.Event{Attempt: claims.Failures(), Err: err, Wait: d, Elapsed: claims.Since()})
			wait(d)
		}
	}
	return nil
}

// work works a claimed wake and gives its lease slot back; it returns the
// handler's error, if one ended the wake.
func (w *Worker[T]) work(ctx context.Context, s *Subscription, wake *Wake, sent time.Time) error {
	defer w.leases.release()
	w.eng.obs.claimed(wake)
	ttl := wake.LeaseTTL
	if ttl <= 0 {
		ttl = MinLeaseTTL // a server that does not say: assume the shortest
	}
	out := w.eng.work(ctx, s, wake, ttl, sent)
	if out.handler != nil {
		w.eng.obs.failed(wake, "handler", out.handler)
	}
	return out.handler
}

// wakeEvent is a wake event of a pull-wake subscription's wake stream.
type wakeEvent struct {
	Type         string `json:"type"`
	Subscription string `json:"subscription_id"`
	Stream       string `json:"stream"`
	Generation   int64  `json:"generation"`
}

// wakeTail returns the wake stream's tail offset, or "" when it cannot be
// read (the follower then retries, and the claim loops poll).
func (w *Worker[T]) wakeTail(ctx context.Context, stream string) durable.Offset {
	info, err := w.c.Head(ctx, stream)
	if err != nil {
		return ""
	}
	return info.NextOffset
}

// follow tails a wake stream from offset from and signals the
// subscriptions its events name (every subscription of the stream for
// data that is not a wake event). A Reader that fails is opened again
// from the stream's tail after the poll interval, and every subscription
// is signalled; the claim loops poll meanwhile.
func (w *Worker[T]) follow(ctx context.Context, stream string, from durable.Offset, signals map[string]chan struct{}) {
	poke := func(id string) {
		if ch, ok := signals[id]; ok {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	pokeAll := func() {
		for id := range signals {
			poke(id)
		}
	}
	for ctx.Err() == nil {
		var err error
		if from != "" {
			err = w.tailWakes(ctx, stream, from, poke, pokeAll)
			if ctx.Err() != nil {
				return
			}
		}
		w.eng.obs.failed(nil, "wake stream "+stream, err)
		t := time.NewTimer(w.cfg.poll)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		from = w.wakeTail(ctx, stream)
		pokeAll() // events may have been missed meanwhile
	}
}

// tailWakes reads one wake stream until an error.
func (w *Worker[T]) tailWakes(ctx context.Context, stream string, from durable.Offset, poke func(string), pokeAll func()) error {
	r, err := durable.NewReader(w.c, stream, durable.BytesCodec{}, durable.WithStart(from))
	if err != nil {
		return err
	}
	defer closeReader(r)
	for {
		m, err := r.Next(ctx)
		if err != nil {
			return err
		}
		ids := wakeIDs(m.Data)
		if len(ids) == 0 {
			pokeAll()
		}
		for _, id := range ids {
			poke(id)
		}
	}
}

// wakeIDs returns the subscription ids of the wake events in data: one
// JSON event (a message of a JSON stream) or one per line (other
// streams). Data that holds no wake event gives none.
func wakeIDs(data []byte) []string {
	var ids []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		var ev wakeEvent
		if json.Unmarshal(line, &ev) == nil && ev.Type == "wake" && ev.Subscription != "" {
			ids = append(ids, ev.Subscription)
		}
	}
	return ids
}
