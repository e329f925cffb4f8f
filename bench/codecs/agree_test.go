package codecs

import (
	"encoding/json"
	"testing"

	"github.com/durablego/durable/internal/testsupport/jsonagree"
)

// divergences counts the cases of jsonagree.Cases on which l disagrees with
// encoding/json, over the types jsoncodec's agreement test uses.
func divergences(l lib) (n int, first error) {
	count := func(err error) {
		if err != nil {
			n++
			if first == nil {
				first = err
			}
		}
	}
	for _, c := range jsonagree.Cases {
		data := []byte(c)
		count(diff[jsonagree.Shape](l, data))
		count(diff[jsonagree.Plain](l, data))
		count(diff[any](l, data))
		count(diff[map[string]any](l, data))
		count(diff[[]any](l, data))
		count(diff[*jsonagree.Shape](l, data))
		count(diff[json.RawMessage](l, data))
		count(diff[string](l, data))
		count(diff[int](l, data))
	}
	return n, first
}

func diff[T any](l lib, data []byte) error {
	return jsonagree.Diff(
		func(b []byte, v *T) error { return l.dec(b, v) },
		func(dst []byte, v T) ([]byte, error) {
			b, err := l.enc(v)
			return append(dst, b...), err
		}, data)
}

// TestAgreement reports, for each candidate, on how many of jsonagree's
// cases it disagrees with encoding/json (go test -v shows the counts), and
// fails if go-json, the library jsoncodec is built on, disagrees on any.
func TestAgreement(t *testing.T) {
	for _, l := range libs[1:] {
		n, first := divergences(l)
		t.Logf("%-14s %3d disagreements; first: %v", l.name, n, first)
		if l.name == "goccy-go-json" && n > 0 {
			t.Errorf("go-json disagrees with encoding/json on %d cases; first: %v", n, first)
		}
	}
}
