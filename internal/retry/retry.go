package retry

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy is a backoff schedule (the public RetryPolicy, converted).
type Policy struct {
	Initial     time.Duration // first wait
	Max         time.Duration // cap on one wait
	Multiplier  float64       // growth per retry
	Jitter      float64       // randomisation factor in [0, 1]
	MaxAttempts int           // attempts per episode, the first included; 0 = no limit
	MaxElapsed  time.Duration // give up once this long has passed since the episode's first failure; 0 = no limit
}

// Tail is the schedule of a consumer meant to run forever (a Reader, a
// subscription Worker): 100 ms doubling to at most 10 s, ±20 % jitter, and
// no limit, so only its context ends its retries.
var Tail = Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.2}

// Validate reports whether the policy is usable, naming the field that is
// not.
func (p Policy) Validate() error {
	switch {
	case p.Initial <= 0:
		return fmt.Errorf("retry policy: Initial must be > 0, got %v", p.Initial)
	case p.Max < p.Initial:
		return fmt.Errorf("retry policy: Max (%v) must be ≥ Initial (%v)", p.Max, p.Initial)
	case !(p.Multiplier >= 1): // also rejects NaN
		return fmt.Errorf("retry policy: Multiplier must be ≥ 1, got %v", p.Multiplier)
	case !(p.Jitter >= 0 && p.Jitter <= 1):
		return fmt.Errorf("retry policy: Jitter must be in [0, 1], got %v", p.Jitter)
	case p.MaxAttempts < 0:
		return fmt.Errorf("retry policy: MaxAttempts must be ≥ 0, got %d", p.MaxAttempts)
	case p.MaxElapsed < 0:
		return fmt.Errorf("retry policy: MaxElapsed must be ≥ 0, got %v", p.MaxElapsed)
	}
	return nil
}

// Schedule is the retry budget of one caller: an episode starts with a
// failure after a success (or at the first failure), its waits grow
// exponentially, and it ends with the next successful response (Reset) or
// when its budget is spent. Not safe for concurrent use.
type Schedule struct {
	p        Policy
	bo       *backoff.ExponentialBackOff
	start    time.Time // first failure of the episode; zero: no episode
	failures int
}

// NewSchedule returns a schedule with no episode under way.
func NewSchedule(p Policy) *Schedule {
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.Initial),
		backoff.WithMaxInterval(p.Max),
		backoff.WithMultiplier(p.Multiplier),
		backoff.WithRandomizationFactor(p.Jitter),
		backoff.WithMaxElapsedTime(0), // the episode's budget is ours
	)
	return &Schedule{p: p, bo: bo}
}

// Next records a failure and returns the wait before the next attempt
// (floor, the server's Retry-After, raising it), or false when the
// episode's budget does not allow another attempt: MaxAttempts reached, or
// the wait would end more than MaxElapsed after the episode's first
// failure. A false ends the episode.
func (s *Schedule) Next(floor time.Duration) (time.Duration, bool) {
	now := time.Now()
	if s.failures == 0 {
		s.start = now
		s.bo.Reset()
	}
	s.failures++
	if s.p.MaxAttempts > 0 && s.failures >= s.p.MaxAttempts {
		s.Reset()
		return 0, false
	}
	d := max(s.bo.NextBackOff(), floor)
	if s.p.MaxElapsed > 0 && now.Sub(s.start)+d > s.p.MaxElapsed {
		s.Reset()
		return 0, false
	}
	return d, true
}

// Failures returns the failures of the episode under way (0: none).
func (s *Schedule) Failures() int { return s.failures }

// Since returns how long the episode under way has lasted.
func (s *Schedule) Since() time.Duration {
	if s.failures == 0 {
		return 0
	}
	return time.Since(s.start)
}

// Reset ends the episode: the next failure starts a fresh budget.
func (s *Schedule) Reset() {
	s.failures = 0
	s.start = time.Time{}
}

// Event describes a step of an episode, for logs and hooks.
type Event struct {
	// Attempt is the number of the attempt that failed (1 = the first of
	// the episode) or, with Recovered, the failures the episode had.
	Attempt int
	// Err is the failure being retried (nil with Recovered).
	Err error
	// Wait is the wait before the next attempt.
	Wait time.Duration
	// Recovered is set on the success that ends an episode.
	Recovered bool
	// Elapsed is how long the episode has lasted.
	Elapsed time.Duration
}

// Do runs attempt until it succeeds, fails permanently (classify says no)
// or the schedule's budget is spent, waiting between attempts as the
// schedule says. It returns nil or the last attempt's error; when ctx ends
// during a wait it returns the last error at once (the caller sees ctx.Err()
// set). A wait that would outlast ctx's deadline is not started: the last
// error is returned instead. notify, when not nil, is called before each
// wait and on the success that ends an episode. Each attempt's context
// carries its number (Attempt).
func Do(ctx context.Context, s *Schedule, attempt func(context.Context) error, classify func(error) (bool, time.Duration), notify func(Event)) error {
	for {
		err := attempt(context.WithValue(ctx, attemptKey{}, s.failures+1))
		if err == nil {
			if s.failures > 0 && notify != nil {
				notify(Event{Attempt: s.failures, Recovered: true, Elapsed: s.Since()})
			}
			s.Reset()
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		ok, floor := classify(err)
		if !ok {
			s.Reset()
			return err
		}
		d, ok := s.Next(floor)
		if !ok {
			return err
		}
		if dl, has := ctx.Deadline(); has && time.Until(dl) < d {
			s.Reset()
			return err
		}
		if notify != nil {
			notify(Event{Attempt: s.failures, Err: err, Wait: d, Elapsed: s.Since()})
		}
		if Sleep(ctx, d) != nil {
			return err
		}
	}
}

type attemptKey struct{}

// Attempt returns the number of the attempt of Do whose context ctx is
// (1 for the first attempt of an episode, 2 for its first retry, ...), or
// 1 outside Do.
func Attempt(ctx context.Context) int {
	if n, ok := ctx.Value(attemptKey{}).(int); ok {
		return n
	}
	return 1
}

// Sleep waits for d or until ctx ends (its error is returned then).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
