package offsetstore

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
)

// FuzzDecodeFile feeds arbitrary bytes to the offset-file decoder. It must
// never panic; every input either decodes to a state that passes validation
// and survives an encode/decode round trip unchanged, or fails with
// ErrCorrupt or ErrUnknownVersion.
func FuzzDecodeFile(f *testing.F) {
	f.Add(validFile(f))
	for _, seed := range []string{
		"",
		"{}",
		"null",
		"[]",
		`{"version":1}`,
		`{"version":2}`,
		`{"version":1e0}`,
		`{"version":99999999999999999999}`,
		`{"version":1,"checksum":"sha256:","data":{}}`,
		`{"version":1,"checksum":"md5:00","data":{}}`,
		"\xef\xbb\xbf{\"version\":1}",
	} {
		f.Add([]byte(seed))
	}
	for _, data := range []string{
		`{"positions":{},"epochs":{}}`,
		`{"positions":{"a":{"offset":"-1","skip":0}},"epochs":{"p":0}}`,
		`{"positions":{"a":{"offset":"-1","skip":-1}},"epochs":{}}`,
		`{"positions":{"":{"offset":"-1","skip":0}},"epochs":{}}`,
		`{"positions":{"a":{"offset":"","skip":0}},"epochs":{}}`,
		`{"positions":{"a":{"offset":"x","skip":1.5}},"epochs":{}}`,
		`{"positions":{"a":{"offset":"x","skip":0,"extra":1}},"epochs":{}}`,
		`{"positions":{"a":{"offset":"x","skip":0},"a":{"offset":"y","skip":1}},"epochs":{}}`,
		`{"positions":{"\ud800":{"offset":"x","skip":0}},"epochs":{}}`,
		`{"positions":null,"epochs":{}}`,
		`{"positions":{},"epochs":{"p":-5}}`,
		`{"positions":{},"epochs":{"p":9223372036854775808}}`,
		`[]`,
	} {
		f.Add(withChecksum(data))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeState(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownVersion) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrUnknownVersion", err)
			}
			if s != nil {
				t.Fatal("state returned with an error")
			}
			return
		}
		for k, p := range s.positions {
			if ValidateKey("key", k) != nil || ValidatePosition(p) != nil {
				t.Fatalf("decoded invalid position %q: %+v", k, p)
			}
		}
		for k, e := range s.epochs {
			if ValidateKey("producer ID", k) != nil || validateEpoch(e) != nil {
				t.Fatalf("decoded invalid epoch %q: %d", k, e)
			}
		}
		enc, err := encodeState(s)
		if err != nil {
			t.Fatalf("encode a decoded state: %v", err)
		}
		s2, err := decodeState(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !maps.Equal(s.positions, s2.positions) || !maps.Equal(s.epochs, s2.epochs) {
			t.Fatalf("round trip changed the state: %+v != %+v", s, s2)
		}
	})
}

// FuzzLockedBy feeds arbitrary lock-file content to the holder parser: it
// never panics, always wraps ErrLocked, keeps control characters out of the
// message, and reads back what holderRecord writes.
func FuzzLockedBy(f *testing.F) {
	f.Add(holderRecord())
	for _, seed := range []string{"", "pid=", "pid=12\n", "pid=x\nhost=h", "pid=1\nhost=a\x1b[2Jb\nsince=2025-01-02T03:04:05Z\n", "since=yesterday\npid=7"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		err := lockedBy(rec)
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("lockedBy(%q) = %v, not ErrLocked", rec, err)
		}
		for _, r := range err.Error() {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("lockedBy(%q) = %q: control character", rec, err)
			}
		}
	})
}

func TestLockedBy(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	for rec, want := range map[string]string{
		string(holderRecord()): fmt.Sprintf("offsetstore: offset file is locked by process %d on host %s since ", os.Getpid(), host),
		"":                     "offsetstore: offset file is locked by another process",
		"pid=x\nhost=h\n":      "offsetstore: offset file is locked by another process",
		"pid=42\n":             "offsetstore: offset file is locked by process 42",
	} {
		if got := lockedBy([]byte(rec)).Error(); !strings.HasPrefix(got, want) {
			t.Errorf("lockedBy(%q) = %q, want prefix %q", rec, got, want)
		}
	}
}
