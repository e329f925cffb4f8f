package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// StreamMessage is one message of the stream as read back at the end: the
// offset of the read that returned it and its bytes.
type StreamMessage struct {
	Offset string
	Data   []byte
}

// History is everything the checker looks at.
type History struct {
	Writers []string                   // writer IDs
	Stream  []StreamMessage            // the whole stream, in order
	Acks    map[string][]AckRecord     // writer ID -> its ack log
	Handled map[string][]HandledRecord // reader ID -> its handled log
}

// Result is the checker's verdict.
type Result struct {
	Events     int      // messages in the stream
	Acked      int      // acknowledged events (lines of all ack logs)
	Unacked    int      // stream messages whose (writer, epoch, seq) no ack log holds
	Rewritten  int      // (writer, seq) pairs in the stream under more than one epoch
	Total      int      // violations found
	Violations []string // the violations, one line each (at most a few of each kind)
}

// maxReport bounds the violations reported per kind, so a systematic fault
// does not bury the others.
const maxReport = 10

type reporter struct {
	out    []string
	counts map[string]int
}

func (r *reporter) add(kind, format string, args ...any) {
	if r.counts == nil {
		r.counts = map[string]int{}
	}
	r.counts[kind]++
	switch n := r.counts[kind]; {
	case n <= maxReport:
		r.out = append(r.out, kind+": "+fmt.Sprintf(format, args...))
	case n == maxReport+1:
		r.out = append(r.out, kind+": (more not shown)")
	}
}

// total counts every violation, shown or not.
func (r *reporter) total() int {
	n := 0
	for _, c := range r.counts {
		n += c
	}
	return n
}

// compareOffsets orders server offsets lexicographically, the start
// sentinel "-1" first.
func compareOffsets(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "-1":
		return -1
	case b == "-1":
		return 1
	}
	return strings.Compare(a, b)
}

type wes struct {
	w    string
	e, s int64
}

// Check verifies the history against the promises listed in the package
// documentation and returns what it found.
func Check(h History) Result {
	var rep reporter
	res := Result{Events: len(h.Stream)}
	known := map[string]bool{}
	for _, w := range h.Writers {
		known[w] = true
	}

	// Decode the stream.
	events := make([]Event, len(h.Stream))
	valid := make([]bool, len(h.Stream))
	for i, m := range h.Stream {
		var ev Event
		dec := json.NewDecoder(bytes.NewReader(m.Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil || !known[ev.W] || ev.S < 0 || ev.E < 0 {
			rep.add("foreign message", "stream message %d (read at offset %s) is not an event of a known writer: %.80q", i, m.Offset, m.Data)
			continue
		}
		events[i], valid[i] = ev, true
	}

	// Where each (writer, epoch, seq) is; duplicates within one epoch.
	where := map[wes][]int{}
	for i, ev := range events {
		if !valid[i] {
			continue
		}
		k := wes{ev.W, ev.E, ev.S}
		where[k] = append(where[k], i)
		if n := len(where[k]); n == 2 {
			rep.add("duplicate in one epoch", "writer %s epoch %d seq %d is in the stream at messages %d and %d", ev.W, ev.E, ev.S, where[k][0], i)
		}
	}

	// Per writer: epochs never go backwards (fencing), seqs consecutive
	// within an epoch, and every seq 0..max present.
	type wstate struct {
		epoch   int64
		lastSeq int64
		started bool
		seen    map[int64]bool
		max     int64
	}
	ws := map[string]*wstate{}
	for i, ev := range events {
		if !valid[i] {
			continue
		}
		st := ws[ev.W]
		if st == nil {
			st = &wstate{seen: map[int64]bool{}, max: -1}
			ws[ev.W] = st
		}
		switch {
		case !st.started || ev.E > st.epoch:
			st.started, st.epoch = true, ev.E
		case ev.E < st.epoch:
			rep.add("zombie write", "writer %s epoch %d seq %d at message %d lands after epoch %d began (fencing failed)", ev.W, ev.E, ev.S, i, st.epoch)
			continue
		case ev.S != st.lastSeq+1:
			rep.add("gap or reorder in one epoch", "writer %s epoch %d: seq %d at message %d follows seq %d", ev.W, ev.E, ev.S, i, st.lastSeq)
		}
		st.lastSeq = ev.S
		st.seen[ev.S] = true
		if ev.S > st.max {
			st.max = ev.S
		}
	}
	ids := make([]string, 0, len(ws))
	for w := range ws {
		ids = append(ids, w)
	}
	sort.Strings(ids)
	for _, w := range ids {
		st := ws[w]
		for s := int64(0); s <= st.max; s++ {
			if !st.seen[s] {
				rep.add("lost event", "writer %s seq %d is missing from the stream (max seq %d)", w, s, st.max)
			}
		}
	}

	// Acknowledged events: present once under their epoch, before the
	// acknowledged offset, and never written again by a later epoch.
	later := map[string]map[int64][]int64{} // writer -> seq -> epochs in stream
	for i, ev := range events {
		if !valid[i] {
			continue
		}
		if later[ev.W] == nil {
			later[ev.W] = map[int64][]int64{}
		}
		later[ev.W][ev.S] = append(later[ev.W][ev.S], ev.E)
	}
	ackedSet := map[wes]bool{}
	for _, w := range h.Writers {
		for _, a := range h.Acks[w] {
			ackedSet[wes{a.W, a.E, a.S}] = true
			res.Acked++
			if a.W != w {
				rep.add("bad ack log", "ack log of writer %s holds an event of writer %s", w, a.W)
				continue
			}
			at := where[wes{a.W, a.E, a.S}]
			if len(at) == 0 {
				rep.add("acknowledged event lost", "writer %s epoch %d seq %d was acknowledged (offset %s) but is not in the stream", a.W, a.E, a.S, a.O)
				continue
			}
			if m := h.Stream[at[0]]; compareOffsets(m.Offset, a.O) >= 0 {
				rep.add("acknowledged offset too early", "writer %s epoch %d seq %d was acknowledged with offset %s but is read from offset %s", a.W, a.E, a.S, a.O, m.Offset)
			}
			for _, e := range later[a.W][a.S] {
				if e > a.E {
					rep.add("acknowledged event rewritten", "writer %s seq %d acknowledged in epoch %d is in the stream again in epoch %d", a.W, a.S, a.E, e)
				}
			}
		}
	}

	for k, at := range where {
		if !ackedSet[k] {
			res.Unacked += len(at)
		}
	}
	for _, seqs := range later {
		for _, epochs := range seqs {
			distinct := map[int64]bool{}
			for _, e := range epochs {
				distinct[e] = true
			}
			if len(distinct) > 1 {
				res.Rewritten++
			}
		}
	}

	// Readers: the handled log is the stream, message for message.
	readers := make([]string, 0, len(h.Handled))
	for r := range h.Handled {
		readers = append(readers, r)
	}
	sort.Strings(readers)
	for _, r := range readers {
		log := h.Handled[r]
		for i := 1; i < len(log); i++ {
			a, b := log[i-1], log[i]
			if c := compareOffsets(a.Offset, b.Offset); c > 0 || (c == 0 && a.Skip >= b.Skip) {
				rep.add("handled positions out of order", "reader %s entry %d has position %s+%d, not after entry %d's %s+%d", r, i, b.Offset, b.Skip, i-1, a.Offset, a.Skip)
			}
		}
		n := min(len(log), len(h.Stream))
		for i := 0; i < n; i++ {
			if !sameJSON(log[i].M, h.Stream[i].Data) {
				rep.add("handled log differs", "reader %s entry %d is %.80s, stream message %d is %.80s%s", r, i, log[i].M, i, h.Stream[i].Data, diagnose(log, h.Stream, i))
				break
			}
		}
		if len(log) != len(h.Stream) {
			rep.add("handled log length", "reader %s handled %d messages, the stream has %d", r, len(log), len(h.Stream))
		}
	}

	res.Violations, res.Total = rep.out, rep.total()
	return res
}

// diagnose says whether a handled log that departs from the stream at i
// repeated a message (duplicate delivery) or skipped one (loss).
func diagnose(log []HandledRecord, stream []StreamMessage, i int) string {
	switch {
	case i > 0 && sameJSON(log[i].M, stream[i-1].Data):
		return " (message delivered twice)"
	case i+1 < len(stream) && sameJSON(log[i].M, stream[i+1].Data):
		return " (a message was skipped)"
	}
	return ""
}

func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
