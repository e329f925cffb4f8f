package jsonagree

import (
	"encoding/json"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func stdAppend[T any](dst []byte, v T) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(dst, b...), err
}

// TestDiff: encoding/json agrees with itself on every case; a decoder that
// accepts everything, or an encoder that writes other bytes, does not.
func TestDiff(t *testing.T) {
	t.Parallel()
	std := func(b []byte, v *Shape) error { return json.Unmarshal(b, v) }
	for _, c := range Cases {
		Check(t, std, stdAppend[Shape], []byte(c))
	}
	lax := func(b []byte, v *Shape) error { _ = json.Unmarshal(b, v); return nil }
	if Diff(lax, stdAppend[Shape], []byte(`{"i":"x"}`)) == nil {
		t.Error("a decoder accepting what encoding/json rejects agrees")
	}
	spaced := func(dst []byte, v Shape) ([]byte, error) {
		b, err := json.MarshalIndent(v, "", " ")
		return append(dst, b...), err
	}
	if Diff(std, spaced, []byte(`{"i":1}`)) == nil {
		t.Error("an encoder writing other bytes agrees")
	}
	off := func(b []byte, v *Shape) error { err := json.Unmarshal(b, v); v.I++; return err }
	if Diff(off, stdAppend[Shape], []byte(`{"i":1}`)) == nil {
		t.Error("a decoder producing another value agrees")
	}
}
