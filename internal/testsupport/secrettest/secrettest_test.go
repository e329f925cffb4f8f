package secrettest

import (
	"net/url"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFind(t *testing.T) {
	u, err := StreamURL("http://127.0.0.1:1/v1/stream/", "s")
	if err != nil {
		t.Fatal(err)
	}
	// Every token but the header ones is in the URL, escaped or not.
	found := Find("clean text", u, "AUTHORIZATION: BEARER "+strings.ToUpper(StaticAuth))
	if len(found) != 5 {
		t.Fatalf("found %d tokens, want 5 (4 in the URL, 1 in the header): %q", len(found), found)
	}
	if got := Find("x=" + url.QueryEscape(FuncAuth+" ")); len(got) != 1 {
		t.Fatalf("query-escaped token not found: %q", got)
	}
	if got := Find("nothing here", ""); len(got) != 0 {
		t.Fatalf("found %q in clean texts", got)
	}
}
