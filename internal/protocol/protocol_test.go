package protocol

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestIsTrue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{{"true", true}, {"TRUE", true}, {"True", true}, {"", false}, {"false", false}, {"1", false}, {"yes", false}, {"truee", false}} {
		if got := IsTrue(tc.in); got != tc.want {
			t.Errorf("IsTrue(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseTTL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{{"0", 0, true}, {"3600", 3600, true}, {"+3600", 0, false}, {"03600", 0, false}, {"3600.0", 0, false}, {"3.6e3", 0, false}, {"", 0, false}, {"-1", 0, false}, {" 1", 0, false}, {"9999999999999999999", 0, false}} {
		got, ok := ParseTTL(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseTTL(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseProducerNumber(t *testing.T) {
	if _, ok := ParseProducerNumber("9007199254740991"); !ok {
		t.Error("2^53-1 rejected")
	}
	if _, ok := ParseProducerNumber("9007199254740992"); ok {
		t.Error("2^53 accepted")
	}
}

func TestMediaTypes(t *testing.T) {
	if !IsJSON("Application/JSON; charset=utf-8") {
		t.Error("IsJSON with params")
	}
	if !IsTextual("text/plain") || IsTextual("application/octet-stream") || !IsTextual("application/json") {
		t.Error("IsTextual")
	}
}
