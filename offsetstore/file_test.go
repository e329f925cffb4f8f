package offsetstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func mustOpen(t *testing.T, path string) *File {
	t.Helper()
	f, err := OpenFile(path)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	return f
}

func TestFilePersistsAcrossReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "offsets.json")
	f := mustOpen(t, path)
	want := map[string]Position{}
	for i := range 20 {
		k := fmt.Sprintf("http://example.test/v1/stream/s%d?token=x", i)
		want[k] = Position{Offset: fmt.Sprintf("%016d", i), Skip: int64(i), Meta: strings.Repeat("m", i)}
		if err := f.Save(ctx, k, want[k]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.SaveEpoch(ctx, "producer-1", 9); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"version":1,"checksum":"sha256:`)) {
		t.Fatalf("unexpected file prefix: %.60s", b)
	}

	g := mustOpen(t, path)
	defer g.Close()
	for k, w := range want {
		got, ok, err := g.Load(ctx, k)
		if err != nil || !ok || got != w {
			t.Errorf("Load(%q) = %+v %v %v, want %+v", k, got, ok, err, w)
		}
	}
	if e, ok, err := g.LoadEpoch(ctx, "producer-1"); e != 9 || !ok || err != nil {
		t.Errorf("LoadEpoch = %d %v %v", e, ok, err)
	}
}

func TestFileMissingIsEmptyAndNotCreatedUntilSave(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "offsets.json")
	f := mustOpen(t, path)
	defer f.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file created by OpenFile: %v", err)
	}
	if err := f.Save(context.Background(), "k", Position{Offset: "-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

// validFile returns the content of a valid file holding one position.
func validFile(t testing.TB) []byte {
	t.Helper()
	s := newState()
	s.positions["k"] = Position{Offset: "0000_0042", Skip: 2, Meta: "m"}
	s.epochs["p"] = 3
	b, err := encodeState(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFileCorrupt(t *testing.T) {
	t.Parallel()
	valid := validFile(t)
	for _, tc := range []struct {
		name    string
		content []byte
		want    error
	}{
		{"empty file", nil, ErrCorrupt},
		{"whitespace only", []byte(" \n\t\n"), ErrCorrupt},
		{"truncated half", valid[:len(valid)/2], ErrCorrupt},
		{"truncated last byte", valid[:len(valid)-2], ErrCorrupt},
		{"garbage", []byte("\x00\x01\x02 not json at all \xff"), ErrCorrupt},
		{"zero bytes", make([]byte, 512), ErrCorrupt},
		{"json null", []byte("null"), ErrCorrupt},
		{"json array", []byte(`[1,2,3]`), ErrCorrupt},
		{"hand edited skip", bytes.Replace(valid, []byte(`"skip":2`), []byte(`"skip":3`), 1), ErrCorrupt},
		{"hand edited offset", bytes.Replace(valid, []byte(`0000_0042`), []byte(`0000_0043`), 1), ErrCorrupt},
		{"wrong checksum", bytes.Replace(valid, []byte(`sha256:`), []byte(`sha256:00`), 1), ErrCorrupt},
		{"no checksum", []byte(`{"version":1,"data":{"positions":{},"epochs":{}}}`), ErrCorrupt},
		{"no version", []byte(`{"checksum":"sha256:00","data":{}}`), ErrCorrupt},
		{"string version", []byte(`{"version":"1"}`), ErrCorrupt},
		{"fractional version", []byte(`{"version":1.5}`), ErrCorrupt},
		{"extra field", bytes.Replace(valid, []byte(`{"version":1,`), []byte(`{"version":1,"x":0,`), 1), ErrCorrupt},
		{"trailing garbage", append(append([]byte{}, valid...), "}"...), ErrCorrupt},
		{"unknown version 2", []byte(`{"version":2,"whatever":true}`), ErrUnknownVersion},
		{"unknown version 0", []byte(`{"version":0}`), ErrUnknownVersion},
		{"unknown version negative", []byte(`{"version":-1}`), ErrUnknownVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "offsets.json")
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := OpenFile(path)
			if err == nil {
				f.Close()
				t.Fatal("OpenFile succeeded on a bad file")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != path || !strings.Contains(err.Error(), path) {
				t.Fatalf("err %v does not name the path", err)
			}
			// The bad file is left untouched and the lock released.
			if b, _ := os.ReadFile(path); !bytes.Equal(b, tc.content) {
				t.Fatal("bad file was modified")
			}
			if _, err := OpenFile(path); !errors.Is(err, tc.want) {
				t.Fatalf("second open: err = %v, want %v (lock leaked?)", err, tc.want)
			}
		})
	}
}

func TestDecodeValidVariants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		data string
		n    int
	}{
		{"empty maps", `{"positions":{},"epochs":{}}`, 0},
		{"one position", `{"positions":{"a":{"offset":"-1","skip":0}},"epochs":{}}`, 1},
		{"spaces in data", `{ "positions" : { "a" : { "offset" : "5" , "skip" : 1 , "meta" : "x" } } , "epochs" : { "p" : 1 } }`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := withChecksum(tc.data)
			s, err := decodeState(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.positions) != tc.n {
				t.Fatalf("got %d positions", len(s.positions))
			}
		})
	}
}

func TestFileLockInProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "offsets.json")
	f := mustOpen(t, path)
	for _, p := range []string{path, filepath.Join(filepath.Dir(path), ".", "offsets.json")} {
		g, err := OpenFile(p)
		if !errors.Is(err, ErrLocked) {
			if g != nil {
				g.Close()
			}
			t.Fatalf("second OpenFile(%s): err = %v, want ErrLocked", p, err)
		}
		if want := fmt.Sprintf("locked by another File in this process (pid %d)", os.Getpid()); !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	g := mustOpen(t, path)
	g.Close()
}

func TestFileClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustOpen(t, filepath.Join(t.TempDir(), "offsets.json"))
	if err := f.Save(ctx, "k", Position{Offset: "1"}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Save", func() error { return f.Save(ctx, "k", Position{Offset: "2"}) }},
		{"SaveEpoch", func() error { return f.SaveEpoch(ctx, "p", 1) }},
		{"Load", func() error { _, _, err := f.Load(ctx, "k"); return err }},
		{"LoadEpoch", func() error { _, _, err := f.LoadEpoch(ctx, "p"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, ErrClosed) {
				t.Fatalf("err = %v, want ErrClosed", err)
			}
		})
	}
}

func TestFileRemovesStaleTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "offsets.json")
	stale := filepath.Join(dir, "offsets.json"+tempInfix+"123")
	other := filepath.Join(dir, "other.json"+tempInfix+"123")
	for _, p := range []string{stale, other} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f := mustOpen(t, path)
	defer f.Close()
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale temp file kept: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("another file's temp removed: %v", err)
	}
}

func TestFileSaveError(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sub")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f := mustOpen(t, filepath.Join(dir, "offsets.json"))
	defer f.Close()
	if err := os.RemoveAll(dir); err != nil { // the directory vanishes under the store
		t.Fatal(err)
	}
	err := f.Save(context.Background(), "k", Position{Offset: "1"})
	var fe *FileError
	if !errors.As(err, &fe) || fe.Op != "save" {
		t.Fatalf("err = %v, want a save FileError", err)
	}
}

// TestFileCoalesces holds the writer slot while many goroutines save, then
// checks that all their saves went to disk in a single write.
func TestFileCoalesces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "offsets.json")
	f := mustOpen(t, path)
	defer f.Close()
	const n = 32
	f.sem <- struct{}{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := f.Save(ctx, fmt.Sprint("k", i), Position{Offset: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	for {
		f.mu.Lock()
		gen := f.gen
		f.mu.Unlock()
		if gen == n {
			break
		}
		runtimeGosched()
	}
	<-f.sem
	wg.Wait()
	f.mu.Lock()
	writes := f.writes
	f.mu.Unlock()
	if writes != 1 {
		t.Fatalf("%d saves took %d writes, want 1", n, writes)
	}
	f.Close()
	g := mustOpen(t, path)
	defer g.Close()
	for i := range n {
		if _, ok, _ := g.Load(ctx, fmt.Sprint("k", i)); !ok {
			t.Fatalf("k%d lost", i)
		}
	}
}

func TestFileSaveWaitHonoursContext(t *testing.T) {
	t.Parallel()
	f := mustOpen(t, filepath.Join(t.TempDir(), "offsets.json"))
	defer f.Close()
	f.sem <- struct{}{} // a write in progress that never ends
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.Save(ctx, "k", Position{Offset: "1"}) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	<-f.sem
}
