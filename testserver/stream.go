package testserver

import (
	"time"
)

// producerState is the idempotent-producer state of one Producer-Id on a
// stream: the current epoch and the highest accepted sequence number.
type producerState struct {
	Epoch int64 `json:"e"`
	Seq   int64 `json:"s"`
}

// producerTuple names one producer request.
type producerTuple struct {
	ID    string `json:"id"`
	Epoch int64  `json:"e"`
	Seq   int64  `json:"s"`
}

// stream is one stream's state. All fields are guarded by Server.mu.
//
// The data log holds the stream's bytes in stream order. For JSON streams
// every message is stored followed by a comma, so that the messages in
// [a, b) are served as "[" + data[a:b-1] + "]" with no copying per message.
// Offsets are positions in this log. bounds (JSON only) holds the end
// position of every message and records the end position of every append,
// both sorted, so offset validation and chunking are binary searches.
type stream struct {
	path        string
	id          uint64 // incarnation, distinguishes a re-created stream in ETags
	contentType string
	isJSON      bool

	ttl        int64 // seconds; valid when hasTTL
	hasTTL     bool
	expiresAt  time.Time
	expiresRaw string
	hasExpiry  bool
	lastAccess time.Time

	data    segLog
	bounds  posIndex
	records posIndex

	closed    bool
	lastSeq   string // last Stream-Seq accepted
	producers map[string]*producerState

	forkedFrom string // source path (relative to the prefix), "" if not a fork
	forkOffset string
	forkSub    int64
	source     *stream // source while this fork holds a reference on it

	refs        int  // live forks referencing this stream
	softDeleted bool // deleted while forks exist: 410 for direct access
	gone        bool // removed from the server; waiters re-check and see 404

	wake chan struct{} // closed and replaced on every change

	disk *diskStream // nil in memory mode
}

func newStream(path string, id uint64, ct string, now time.Time) *stream {
	return &stream{
		path:        path,
		id:          id,
		contentType: ct,
		isJSON:      isJSONType(ct),
		lastAccess:  now,
		producers:   map[string]*producerState{},
		wake:        make(chan struct{}),
	}
}

func (st *stream) tail() int64 { return st.data.len() }

// notify wakes every reader waiting on the stream.
func (st *stream) notify() {
	close(st.wake)
	st.wake = make(chan struct{})
}

// expired reports whether the stream's TTL or absolute expiry has passed.
func (st *stream) expired(now time.Time) bool {
	if st.hasExpiry && !now.Before(st.expiresAt) {
		return true
	}
	if st.hasTTL && now.Sub(st.lastAccess) >= time.Duration(st.ttl)*time.Second {
		return true
	}
	return false
}

// validPos reports whether pos is an offset a reader may start at: within
// the log and, for JSON streams, on a message boundary.
func (st *stream) validPos(pos int64) bool {
	if pos < 0 || pos > st.tail() {
		return false
	}
	if !st.isJSON || pos == 0 || pos == st.tail() {
		return true
	}
	return st.bounds.has(pos)
}

// chunkEnd returns where a read starting at pos ends given the chunk limit.
// A JSON read always includes at least one whole message.
func (st *stream) chunkEnd(pos int64, limit int) int64 {
	end := st.tail()
	if end-pos <= int64(limit) {
		return end
	}
	want := pos + int64(limit)
	if !st.isJSON {
		return want
	}
	// Last message boundary <= want, but at least one message past pos.
	if i := st.bounds.after(want); i > 0 && st.bounds.at(i-1) > pos {
		return st.bounds.at(i - 1)
	}
	if j := st.bounds.after(pos); j < st.bounds.len() {
		return st.bounds.at(j)
	}
	return end
}

var (
	jsonOpen  = []byte("[")
	jsonClose = []byte("]")
)

// bodyParts renders the log range [a, b) as a response body in up to three
// parts, sharing the log's memory where it can (no copy of the data for a
// range inside one segment).
func (st *stream) bodyParts(a, b int64) (parts [3][]byte, n int) {
	if !st.isJSON {
		parts[1] = st.data.slice(a, b)
		return parts, len(parts[1])
	}
	parts[0], parts[2] = jsonOpen, jsonClose
	if a < b {
		parts[1] = st.data.slice(a, b-1) // without the last separator
	}
	return parts, len(parts[1]) + 2
}

// body renders the log range [a, b) as one response body.
func (st *stream) body(a, b int64) []byte {
	if !st.isJSON {
		return st.data.slice(a, b)
	}
	if a == b {
		return []byte("[]")
	}
	out := make([]byte, 0, b-a+1)
	out = append(out, '[')
	out = st.data.appendRange(out, a, b-1)
	return append(out, ']')
}

// appendData appends one record to the log: raw bytes, or JSON messages.
// It returns the message lengths (JSON) for the persistence record.
func (st *stream) appendData(raw []byte, msgs [][]byte) []int64 {
	var lens []int64
	if st.isJSON {
		if len(msgs) == 0 {
			return nil
		}
		lens = make([]int64, len(msgs))
		n := 0
		for _, m := range msgs {
			n += len(m) + 1
		}
		if n <= segSize {
			st.data.reserve(n) // keep the record in one segment
		}
		for i, m := range msgs {
			st.data.write(m)
			st.data.writeByte(',')
			st.bounds.add(st.tail())
			lens[i] = int64(len(m) + 1)
		}
	} else {
		if len(raw) == 0 {
			return nil
		}
		st.data.write(raw)
	}
	st.records.add(st.tail())
	return lens
}

// recordEnd returns the end of the append record that contains position
// pos (the record starting at pos when pos is a record boundary), or -1
// when pos is the tail.
func (st *stream) recordEnd(pos int64) int64 {
	i := st.records.after(pos)
	if i == st.records.len() {
		return -1
	}
	return st.records.at(i)
}

// subOffsetPos resolves (anchor, sub) to a log position, or false when the
// sub-offset runs past the end of the record that follows the anchor.
func (st *stream) subOffsetPos(anchor, sub int64) (int64, bool) {
	if sub == 0 {
		return anchor, true
	}
	end := st.recordEnd(anchor)
	if end < 0 {
		return 0, false
	}
	if !st.isJSON {
		if anchor+sub > end {
			return 0, false
		}
		return anchor + sub, true
	}
	j := st.bounds.after(anchor) + int(sub) - 1
	if j >= st.bounds.len() || st.bounds.at(j) > end {
		return 0, false
	}
	return st.bounds.at(j), true
}

// copyPrefix makes st's log a copy of src's log up to pos (copy-on-fork).
func (st *stream) copyPrefix(src *stream, pos int64) {
	st.data = segLog{}
	if pos > 0 {
		st.data.write(src.data.slice(0, pos))
	}
	if st.isJSON {
		st.bounds = src.bounds.prefix(pos)
	}
	st.records = src.records.prefix(pos)
	if last, ok := st.records.last(); pos > 0 && (!ok || last != pos) {
		st.records.add(pos)
	}
}
