package offsetstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if crashChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

// both is implemented by every store in this package.
type both interface {
	Store
	EpochStore
}

// stores returns a fresh instance of each implementation.
func stores(t *testing.T) map[string]both {
	t.Helper()
	f, err := OpenFile(filepath.Join(t.TempDir(), "offsets.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return map[string]both{"Memory": NewMemory(), "File": f}
}

func TestStoreRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if _, ok, err := s.Load(ctx, "k"); ok || err != nil {
				t.Fatalf("Load on empty store = ok %v, err %v", ok, err)
			}
			if _, ok, err := s.LoadEpoch(ctx, "p"); ok || err != nil {
				t.Fatalf("LoadEpoch on empty store = ok %v, err %v", ok, err)
			}
			for _, want := range []Position{
				{Offset: "-1"},
				{Offset: "0000000000000001_0000000000000042", Skip: 3, Meta: "out=120"},
				{Offset: "now", Skip: 1 << 62, Meta: "ünïcode ✓ \"quoted\" \n"},
			} {
				if err := s.Save(ctx, "k", want); err != nil {
					t.Fatal(err)
				}
				got, ok, err := s.Load(ctx, "k")
				if err != nil || !ok || got != want {
					t.Fatalf("Load = %+v, %v, %v; want %+v", got, ok, err, want)
				}
			}
			for _, e := range []int64{0, 7, 1<<63 - 1} {
				if err := s.SaveEpoch(ctx, "p", e); err != nil {
					t.Fatal(err)
				}
				got, ok, err := s.LoadEpoch(ctx, "p")
				if err != nil || !ok || got != e {
					t.Fatalf("LoadEpoch = %d, %v, %v; want %d", got, ok, err, e)
				}
			}
			// Positions and epochs live in separate namespaces.
			if _, ok, _ := s.Load(ctx, "p"); ok {
				t.Fatal("epoch key visible as a position")
			}
		})
	}
}

func TestStoreInvalidArguments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bad := string([]byte{0xff, 0xfe})
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				call func() error
			}{
				{"empty key", func() error { return s.Save(ctx, "", Position{Offset: "-1"}) }},
				{"invalid UTF-8 key", func() error { return s.Save(ctx, bad, Position{Offset: "-1"}) }},
				{"empty offset", func() error { return s.Save(ctx, "k", Position{}) }},
				{"invalid UTF-8 offset", func() error { return s.Save(ctx, "k", Position{Offset: bad}) }},
				{"negative skip", func() error { return s.Save(ctx, "k", Position{Offset: "-1", Skip: -1}) }},
				{"invalid UTF-8 meta", func() error { return s.Save(ctx, "k", Position{Offset: "-1", Meta: bad}) }},
				{"load empty key", func() error { _, _, err := s.Load(ctx, ""); return err }},
				{"empty producer", func() error { return s.SaveEpoch(ctx, "", 1) }},
				{"negative epoch", func() error { return s.SaveEpoch(ctx, "p", -1) }},
				{"load empty producer", func() error { _, _, err := s.LoadEpoch(ctx, ""); return err }},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if err := tc.call(); !errors.Is(err, ErrInvalid) {
						t.Fatalf("err = %v, want ErrInvalid", err)
					}
				})
			}
			if _, ok, _ := s.Load(ctx, "k"); ok {
				t.Fatal("an invalid save changed the store")
			}
		})
	}
}

func TestStoreCanceledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if err := s.Save(ctx, "k", Position{Offset: "-1"}); !errors.Is(err, context.Canceled) {
				t.Fatalf("Save err = %v", err)
			}
			if _, _, err := s.Load(ctx, "k"); !errors.Is(err, context.Canceled) {
				t.Fatalf("Load err = %v", err)
			}
			if err := s.SaveEpoch(ctx, "p", 1); !errors.Is(err, context.Canceled) {
				t.Fatalf("SaveEpoch err = %v", err)
			}
			if _, _, err := s.LoadEpoch(ctx, "p"); !errors.Is(err, context.Canceled) {
				t.Fatalf("LoadEpoch err = %v", err)
			}
		})
	}
}

func TestStoreConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const goroutines, saves = 16, 50
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					key := fmt.Sprintf("key-%d", g)
					for i := range saves {
						if err := s.Save(ctx, key, Position{Offset: fmt.Sprint(i), Skip: int64(i)}); err != nil {
							t.Error(err)
							return
						}
						if err := s.SaveEpoch(ctx, key, int64(i)); err != nil {
							t.Error(err)
							return
						}
						if pos, ok, err := s.Load(ctx, key); err != nil || !ok || pos.Skip != int64(i) {
							t.Errorf("Load(%s) = %+v %v %v after saving %d", key, pos, ok, err, i)
							return
						}
					}
				})
			}
			wg.Wait()
			for g := range goroutines {
				key := fmt.Sprintf("key-%d", g)
				if pos, _, _ := s.Load(ctx, key); pos.Skip != saves-1 {
					t.Errorf("%s: final skip %d, want %d", key, pos.Skip, saves-1)
				}
			}
		})
	}
}

// ValidateKey and ValidatePosition are what every store (pgstore too)
// checks its arguments with: valid ones pass, each invalid one wraps
// ErrInvalid and says what is wrong.
func TestValidateExported(t *testing.T) {
	t.Parallel()
	bad := string([]byte{0xff})
	for _, k := range []string{"k", "a key with spaces", "ключ", "nul\x00inside"} {
		if err := ValidateKey("key", k); err != nil {
			t.Errorf("ValidateKey(%q) = %v", k, err)
		}
	}
	for _, p := range []Position{{Offset: "-1"}, {Offset: "0001", Skip: 3, Meta: "m"}} {
		if err := ValidatePosition(p); err != nil {
			t.Errorf("ValidatePosition(%+v) = %v", p, err)
		}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ValidateKey("producer ID", ""), "empty producer ID"},
		{ValidateKey("key", bad), "key is not valid UTF-8"},
		{ValidatePosition(Position{}), "empty offset"},
		{ValidatePosition(Position{Offset: bad}), "offset is not valid UTF-8"},
		{ValidatePosition(Position{Offset: "-1", Skip: -2}), "negative skip -2"},
		{ValidatePosition(Position{Offset: "-1", Meta: bad}), "meta is not valid UTF-8"},
	} {
		if !errors.Is(tc.err, ErrInvalid) || !strings.Contains(fmt.Sprint(tc.err), tc.want) {
			t.Errorf("err = %v, want ErrInvalid saying %q", tc.err, tc.want)
		}
	}
}
