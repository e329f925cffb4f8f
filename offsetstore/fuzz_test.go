package offsetstore

import (
	"errors"
	"maps"
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
			if validateKey("key", k) != nil || validatePosition(p) != nil {
				t.Fatalf("decoded invalid position %q: %+v", k, p)
			}
		}
		for k, e := range s.epochs {
			if validateKey("producer ID", k) != nil || validateEpoch(e) != nil {
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
