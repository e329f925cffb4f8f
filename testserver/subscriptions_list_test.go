package testserver

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

type leaseJS struct {
	WakeID    string  `json:"wake_id"`
	Claimed   bool    `json:"claimed"`
	Holder    string  `json:"holder"`
	ExpiresAt *string `json:"expires_at"`
}

type listedSub struct {
	subInfo
	Lease *leaseJS `json:"lease"`
}

func (e *subEnv) list() []listedSub {
	e.t.Helper()
	r := e.do("GET", "subscriptions", "", "")
	e.want(r, 200, "")
	return decode[struct {
		Subscriptions []listedSub `json:"subscriptions"`
	}](e.t, r).Subscriptions
}

// TestSubscriptionList: the list holds every subscription by id with the
// view GET shows, and the lease of the wake in flight follows its life
// (issued, claimed with holder and expiry, released); no token anywhere.
func TestSubscriptionList(t *testing.T) {
	t.Parallel()
	e := newSubEnv(t)
	if got := e.list(); len(got) != 0 {
		t.Fatalf("empty server lists %v", got)
	}
	e.stream("wake", "")
	e.stream("jobs/a", "")
	e.put("b-sub", `{"type":"pull-wake","pattern":"jobs/*","wake_stream":"wake","lease_ttl_ms":10000}`, 201)
	e.put("a-sub", `{"type":"pull-wake","streams":["jobs/a"],"wake_stream":"wake"}`, 201)

	subs := e.list()
	if len(subs) != 2 || subs[0].ID != "a-sub" || subs[1].ID != "b-sub" {
		t.Fatalf("list %+v", subs)
	}
	for _, s := range subs {
		one := e.get(s.ID)
		if !reflect.DeepEqual(s.subInfo, one) {
			t.Errorf("list shows %+v, GET %+v", s.subInfo, one)
		}
		if s.Lease != nil {
			t.Errorf("%s: lease %+v before any wake", s.ID, s.Lease)
		}
	}

	e.appendJSON("jobs/a", `{"n":1}`) // wakes both
	b := e.list()[1]
	if b.Lease == nil || b.Lease.WakeID == "" || b.Lease.Claimed || b.Lease.Holder != "" || b.Generation != 1 {
		t.Fatalf("issued wake: %+v lease %+v", b.subInfo, b.Lease)
	}
	r := e.do("POST", "subscriptions/b-sub/claim", "", `{"worker":"w-1"}`)
	e.want(r, 200, "")
	claim := decode[struct {
		WakeID string `json:"wake_id"`
		Token  string `json:"token"`
	}](t, r)
	b = e.list()[1]
	want := e.clk.Now().Add(10 * time.Second).UTC().Format("2006-01-02T15:04:05.000Z")
	if b.Lease == nil || !b.Lease.Claimed || b.Lease.Holder != "w-1" || b.Lease.WakeID != claim.WakeID || b.Lease.ExpiresAt == nil || *b.Lease.ExpiresAt != want {
		t.Fatalf("claimed lease %+v, want holder w-1 until %s", b.Lease, want)
	}
	for _, rel := range []string{"subscriptions", "subscriptions/b-sub"} {
		if body := e.do("GET", rel, "", "").body; strings.Contains(body, claim.Token) {
			t.Fatalf("GET %s shows the claim token", rel)
		}
	}
	r = e.do("POST", "subscriptions/b-sub/release", claim.Token, `{"wake_id":"`+claim.WakeID+`","generation":1}`)
	e.want(r, http.StatusNoContent, "")
	if b = e.get2("b-sub"); b.Lease != nil && b.Lease.Claimed {
		t.Fatalf("released lease still claimed: %+v", b.Lease)
	}

	r = e.do("POST", "subscriptions", "", "")
	e.want(r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
}

// get2 is get with the lease.
func (e *subEnv) get2(id string) listedSub {
	e.t.Helper()
	r := e.do("GET", "subscriptions/"+id, "", "")
	e.want(r, 200, "")
	return decode[listedSub](e.t, r)
}
