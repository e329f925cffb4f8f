package retry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClassify(t *testing.T) {
	transient := Transient("stale")
	permanent := Permanent("protocol")
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, tc := range []struct {
		name  string
		f     Failure
		retry bool
		floor time.Duration
	}{
		{"503", Failure{Status: 503, Idempotent: true}, true, 0},
		{"503 with Retry-After", Failure{Status: 503, RetryAfter: 2 * time.Second, Idempotent: true}, true, 2 * time.Second},
		{"429", Failure{Status: 429, Idempotent: true}, true, 0},
		{"408", Failure{Status: 408, Idempotent: true}, true, 0},
		{"501", Failure{Status: 501, Idempotent: true}, false, 0},
		{"505", Failure{Status: 505, Idempotent: true}, false, 0},
		{"404", Failure{Status: 404, Idempotent: true}, false, 0},
		{"400", Failure{Status: 400, Idempotent: true}, false, 0},
		{"503 on a plain POST", Failure{Status: 503}, false, 0},
		{"reset", Failure{Err: reset, Idempotent: true}, true, 0},
		{"reset on a plain POST", Failure{Err: reset}, false, 0},
		{"dial error on a plain POST", Failure{Err: &url.Error{Op: "Post", URL: "x", Err: dial}}, true, 0},
		{"body cut short", Failure{Status: 200, Err: io.ErrUnexpectedEOF, Idempotent: true}, true, 0},
		{"marked transient", Failure{Err: fmt.Errorf("x: %w", transient), Idempotent: true}, true, 0},
		{"marked transient on a plain POST", Failure{Err: transient}, false, 0},
		{"marked permanent", Failure{Err: fmt.Errorf("%w: %w", permanent, reset), Idempotent: true}, false, 0},
		{"transient beside permanent", Failure{Err: fmt.Errorf("%w: %w", permanent, transient), Idempotent: true}, true, 0},
		{"cancelled", Failure{Err: context.Canceled, Idempotent: true}, false, 0},
		{"deadline", Failure{Err: context.DeadlineExceeded, Idempotent: true}, false, 0},
		{"attempt timeout", Failure{Err: fmt.Errorf("%w: %w", Transient("attempt timed out"), context.DeadlineExceeded), Idempotent: true}, true, 0},
		{"TLS", Failure{Err: &net.OpError{Op: "dial", Err: x509.UnknownAuthorityError{}}, Idempotent: true}, false, 0},
		{"other error", Failure{Err: errors.New("x"), Idempotent: true}, false, 0},
		{"nothing", Failure{Idempotent: true}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			retry, floor := Classify(tc.f)
			if retry != tc.retry || floor != tc.floor {
				t.Errorf("Classify = %v, %v; want %v, %v", retry, floor, tc.retry, tc.floor)
			}
		})
	}
}

func fast() Policy {
	return Policy{Initial: time.Millisecond, Max: 4 * time.Millisecond, Multiplier: 2}
}

func TestScheduleAttempts(t *testing.T) {
	p := fast()
	p.MaxAttempts = 3
	s := NewSchedule(p)
	for i := range 2 {
		if _, ok := s.Next(0); !ok {
			t.Fatalf("failure %d: no retry", i+1)
		}
	}
	if _, ok := s.Next(0); ok {
		t.Fatal("a third failure was retried with MaxAttempts 3")
	}
	if _, ok := s.Next(0); !ok {
		t.Fatal("the next episode has no budget")
	}
}

// TestScheduleBudgetCountsFromFirstFailure: a schedule created long before
// its first failure still has its whole budget.
func TestScheduleBudgetCountsFromFirstFailure(t *testing.T) {
	p := fast()
	p.MaxElapsed = 50 * time.Millisecond
	s := NewSchedule(p)
	time.Sleep(2 * p.MaxElapsed)
	if _, ok := s.Next(0); !ok {
		t.Fatal("first failure after a quiet start not retried")
	}
	time.Sleep(p.MaxElapsed)
	if _, ok := s.Next(0); ok {
		t.Fatal("retried past MaxElapsed")
	}
	if _, ok := s.Next(0); !ok {
		t.Fatal("a new episode has no budget")
	}
	s.Reset()
	if s.Failures() != 0 || s.Since() != 0 {
		t.Fatal("Reset left an episode")
	}
}

func TestScheduleFloor(t *testing.T) {
	s := NewSchedule(fast())
	if d, ok := s.Next(time.Second); !ok || d != time.Second {
		t.Fatalf("Next(1s) = %v, %v", d, ok)
	}
	p := fast()
	p.MaxElapsed = 100 * time.Millisecond
	s = NewSchedule(p)
	if _, ok := s.Next(time.Second); ok {
		t.Fatal("a floor beyond MaxElapsed was accepted")
	}
}

func TestDo(t *testing.T) {
	errT := Transient("busy")
	classify := func(err error) (bool, time.Duration) { return Classify(Failure{Err: err, Idempotent: true}) }
	t.Run("retries then recovers", func(t *testing.T) {
		s := NewSchedule(fast())
		var events []Event
		n := 0
		err := Do(context.Background(), s, func(context.Context) error {
			if n++; n < 3 {
				return errT
			}
			return nil
		}, classify, func(e Event) { events = append(events, e) })
		if err != nil || n != 3 {
			t.Fatalf("err %v after %d attempts", err, n)
		}
		if len(events) != 3 || events[0].Attempt != 1 || events[1].Attempt != 2 || !events[2].Recovered || events[2].Attempt != 2 {
			t.Fatalf("events %+v", events)
		}
		if s.Failures() != 0 {
			t.Fatal("success did not end the episode")
		}
	})
	t.Run("permanent", func(t *testing.T) {
		n := 0
		perm := Permanent("no")
		err := Do(context.Background(), NewSchedule(fast()), func(context.Context) error { n++; return perm }, classify, nil)
		if err != perm || n != 1 {
			t.Fatalf("err %v after %d attempts", err, n)
		}
	})
	t.Run("budget", func(t *testing.T) {
		p := fast()
		p.MaxAttempts = 4
		n := 0
		err := Do(context.Background(), NewSchedule(p), func(context.Context) error { n++; return errT }, classify, nil)
		if err != errT || n != 4 {
			t.Fatalf("err %v after %d attempts", err, n)
		}
	})
	t.Run("cancelled during a wait", func(t *testing.T) {
		p := fast()
		p.Initial, p.Max = time.Hour, time.Hour
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		err := Do(ctx, NewSchedule(p), func(context.Context) error { return errT }, classify, nil)
		if err != errT || ctx.Err() == nil || time.Since(start) > 10*time.Second {
			t.Fatalf("err %v, ctx %v", err, ctx.Err())
		}
	})
	t.Run("wait beyond the deadline", func(t *testing.T) {
		p := fast()
		p.Initial, p.Max = time.Hour, time.Hour
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n := 0
		err := Do(ctx, NewSchedule(p), func(context.Context) error { n++; return errT }, classify, nil)
		if err != errT || n != 1 || ctx.Err() != nil {
			t.Fatalf("err %v after %d attempts", err, n)
		}
	})
}
