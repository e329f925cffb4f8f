package benchdata

import (
	"encoding/json"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMsgIs100Bytes(t *testing.T) {
	for _, id := range []int{0, 7, 1000000, 1000999, 9999999} {
		b, err := json.Marshal(NewMsg(id))
		if err != nil || len(b) != 100 {
			t.Fatalf("id %d: %d bytes, %v", id, len(b), err)
		}
	}
	if n := len(Msgs()); n != 1000 {
		t.Fatalf("%d messages", n)
	}
}

func TestCatchUpBodies(t *testing.T) {
	next, bodies := 0, 0
	var total int64
	size, err := CatchUpBodies(25, 10, func(body []byte) error {
		var recs []Rec
		if err := json.Unmarshal(body, &recs); err != nil {
			return err
		}
		for _, r := range recs {
			if r.ID != next || !r.OK {
				t.Fatalf("message %+v, want id %d", r, next)
			}
			b, _ := json.Marshal(r)
			total += int64(len(b))
			next++
		}
		bodies++
		return nil
	})
	if err != nil || next != 25 || bodies != 3 || size != total {
		t.Fatalf("%d messages in %d bodies, size %d (want %d), %v", next, bodies, size, total, err)
	}
}
