package testserver

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// On-disk layout of a data directory:
//
//	<dir>/streams/<id>/meta.json   stream configuration (written atomically)
//	<dir>/streams/<id>/log         append-only records
//
// <id> is the stream's incarnation number, so a deleted stream's directory
// never collides with a re-created one. A log record is
//
//	uint32 header length | uint32 data length | uint32 CRC-32C of header+data
//	header (JSON logRecord) | data
//
// where data is what the record appended to the stream's log (for JSON
// streams, the messages each followed by a comma). Replaying the records in
// order rebuilds the data, message and record boundaries, Stream-Seq,
// producer state and closure. A torn or corrupt final record is cut off.

const metaVersion = 1

// logRecord is one entry of a stream's on-disk log: an append with the
// state changes that happen atomically with it.
type logRecord struct {
	Msgs  []int64        `json:"m,omitempty"` // JSON message lengths incl. separator
	Recs  []int64        `json:"r,omitempty"` // explicit record ends (fork prefix)
	Seq   string         `json:"s,omitempty"` // Stream-Seq accepted
	Prod  *producerTuple `json:"p,omitempty"` // producer state after the append
	Close bool           `json:"c,omitempty"` // stream closed by this record
}

type streamMeta struct {
	Version     int    `json:"version"`
	ID          uint64 `json:"id"`
	Path        string `json:"path"`
	ContentType string `json:"contentType"`
	TTL         *int64 `json:"ttl,omitempty"`
	ExpiresAt   string `json:"expiresAt,omitempty"`
	ForkedFrom  string `json:"forkedFrom,omitempty"`
	ForkOffset  string `json:"forkOffset,omitempty"`
	ForkSub     int64  `json:"forkSub,omitempty"`
	SourceID    uint64 `json:"sourceId,omitempty"`
	SoftDeleted bool   `json:"softDeleted,omitempty"`
}

// diskStore is the data-directory backend (nil in memory mode).
type diskStore struct {
	root   string // <dir>/streams
	noSync bool
	lock   *os.File
}

// diskStream is one stream's directory. No file stays open between
// requests (an append opens the log, writes, fsyncs and closes it), so the
// number of streams is not bounded by file descriptors.
type diskStream struct {
	store *diskStore
	dir   string
}

func (ds *diskStream) logPath() string { return filepath.Join(ds.dir, "log") }

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// openDisk opens (or initialises) the data directory and loads its streams.
func (s *Server) openDisk() error {
	d := &diskStore{root: filepath.Join(s.cfg.dataDir, "streams"), noSync: s.cfg.noSync}
	if err := os.MkdirAll(d.root, 0o755); err != nil {
		return err
	}
	lock, err := lockDir(s.cfg.dataDir)
	if err != nil {
		return err
	}
	d.lock = lock
	entries, err := os.ReadDir(d.root)
	if err != nil {
		lock.Close()
		return err
	}
	byID := map[uint64]*stream{}
	sources := map[*stream]uint64{}
	now := s.cfg.clock()
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(d.root, e.Name())
		st, srcID, err := d.load(dir, now)
		if err != nil {
			d.closeAll(byID)
			return fmt.Errorf("load %s: %w", dir, err)
		}
		if st == nil {
			continue // incomplete create: removed
		}
		byID[st.id] = st
		if srcID != 0 {
			sources[st] = srcID
		}
		if st.id > s.nextID {
			s.nextID = st.id
		}
	}
	for st, id := range sources {
		if src := byID[id]; src != nil {
			st.source = src
			src.refs++
		}
	}
	for _, st := range byID {
		if st.softDeleted && st.refs == 0 {
			// Its last fork went away but the cleanup did not finish.
			st.disk.remove()
			continue
		}
		if old := s.streams[st.path]; old != nil {
			d.closeAll(byID)
			return fmt.Errorf("two streams at path %q (ids %d and %d)", st.path, old.id, st.id)
		}
		s.streams[st.path] = st
	}
	s.disk = d
	return nil
}

func (d *diskStore) closeAll(map[uint64]*stream) {
	_ = d.lock.Close()
}

// load reads one stream directory. A directory without meta.json is an
// interrupted create and is removed.
func (d *diskStore) load(dir string, now time.Time) (*stream, uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, os.RemoveAll(dir)
	}
	if err != nil {
		return nil, 0, err
	}
	var m streamMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, 0, fmt.Errorf("corrupt meta.json: %w", err)
	}
	if m.Version != metaVersion {
		return nil, 0, fmt.Errorf("unknown meta.json version %d", m.Version)
	}
	st := newStream(m.Path, m.ID, m.ContentType, now)
	if m.TTL != nil {
		st.ttl, st.hasTTL = *m.TTL, true
	}
	if m.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, m.ExpiresAt)
		if err != nil {
			return nil, 0, fmt.Errorf("bad expiresAt: %w", err)
		}
		st.expiresAt, st.expiresRaw, st.hasExpiry = t, m.ExpiresAt, true
	}
	st.forkedFrom, st.forkOffset, st.forkSub = m.ForkedFrom, m.ForkOffset, m.ForkSub
	st.softDeleted = m.SoftDeleted

	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, err
	}
	good, err := replay(f, st)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > good {
		// Torn final record from a crash: it was never acknowledged.
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, 0, err
		}
	}
	if err := f.Close(); err != nil {
		return nil, 0, err
	}
	st.disk = &diskStream{store: d, dir: dir}
	return st, m.SourceID, nil
}

// replay applies every complete record of the log to st and returns the
// file position after the last good record.
func replay(f *os.File, st *stream) (int64, error) {
	b, err := io.ReadAll(f)
	if err != nil {
		return 0, err
	}
	var pos int64
	for {
		rest := b[pos:]
		if len(rest) < 12 {
			return pos, nil
		}
		hl := int64(binary.LittleEndian.Uint32(rest[0:4]))
		dl := int64(binary.LittleEndian.Uint32(rest[4:8]))
		sum := binary.LittleEndian.Uint32(rest[8:12])
		if int64(len(rest)) < 12+hl+dl {
			return pos, nil
		}
		payload := rest[12 : 12+hl+dl]
		if crc32.Checksum(payload, crcTable) != sum {
			return pos, nil
		}
		var rec logRecord
		if err := json.Unmarshal(payload[:hl], &rec); err != nil {
			return pos, nil
		}
		applyRecord(st, &rec, payload[hl:])
		pos += 12 + hl + dl
	}
}

// applyRecord replays one log record onto st.
func applyRecord(st *stream, rec *logRecord, data []byte) {
	base := st.tail()
	st.data.write(data)
	if st.isJSON {
		p := base
		for _, n := range rec.Msgs {
			p += n
			st.bounds.add(p)
		}
	}
	switch {
	case len(rec.Recs) > 0:
		for _, r := range rec.Recs {
			st.records.add(r)
		}
	case len(data) > 0:
		st.records.add(st.tail())
	}
	if rec.Seq != "" {
		st.lastSeq = rec.Seq
	}
	if rec.Prod != nil {
		st.producers[rec.Prod.ID] = &producerState{Epoch: rec.Prod.Epoch, Seq: rec.Prod.Seq}
	}
	if rec.Close {
		st.closed = true
	}
}

func (d *diskStore) sync(f *os.File) error {
	if d.noSync {
		return nil
	}
	return f.Sync()
}

func (d *diskStore) syncDir(dir string) error {
	if d.noSync {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (s *Server) closeDisk() {
	if s.disk == nil {
		return
	}
	_ = s.disk.lock.Close()
}

func metaOf(st *stream) streamMeta {
	m := streamMeta{
		Version: metaVersion, ID: st.id, Path: st.path, ContentType: st.contentType,
		ForkedFrom: st.forkedFrom, ForkOffset: st.forkOffset, ForkSub: st.forkSub,
		SoftDeleted: st.softDeleted,
	}
	if st.hasTTL {
		ttl := st.ttl
		m.TTL = &ttl
	}
	if st.hasExpiry {
		m.ExpiresAt = st.expiresRaw
	}
	if st.source != nil {
		m.SourceID = st.source.id
	}
	return m
}

// diskCreate persists a new stream: its log (the whole current content as
// one record, or the fork prefix plus initial body), fsynced, then its
// metadata written atomically, then the directory entry fsynced. Caller
// holds s.mu.
func (s *Server) diskCreate(st *stream) error {
	d := s.disk
	if d == nil {
		return nil
	}
	dir := filepath.Join(d.root, strconv.FormatUint(st.id, 10))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ds := &diskStream{store: d, dir: dir}
	f, err := os.OpenFile(ds.logPath(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	closed := false
	fail := func(err error) error {
		if !closed {
			f.Close()
		}
		_ = os.RemoveAll(dir)
		return err
	}
	// One record holding the whole initial content with its boundaries.
	rec := logRecord{Recs: st.records.all(), Close: st.closed}
	if st.isJSON {
		prev := int64(0)
		rec.Msgs = make([]int64, st.bounds.len())
		for i, b := range st.bounds.all() {
			rec.Msgs[i] = b - prev
			prev = b
		}
	}
	if err := writeRecord(f, &rec, st.data.slice(0, st.tail())); err != nil {
		return fail(err)
	}
	if err := d.sync(f); err != nil {
		return fail(err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := writeMeta(d, dir, metaOf(st)); err != nil {
		return fail(err)
	}
	if err := d.syncDir(d.root); err != nil {
		return fail(err)
	}
	st.disk = ds
	return nil
}

// writeMeta writes meta.json atomically.
func writeMeta(d *diskStore, dir string, m streamMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeFileAtomic(d, dir, "meta.json", b, 0o644)
}

// writeFileAtomic replaces dir/name with b: temp file, fsync, rename,
// fsync dir. A crash leaves the old or the new content, never a mix.
func writeFileAtomic(d *diskStore, dir, name string, b []byte, perm os.FileMode) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := d.sync(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return d.syncDir(dir)
}

// diskMeta rewrites st's metadata (soft delete). Caller holds s.mu.
func (s *Server) diskMeta(st *stream) error {
	if st.disk == nil {
		return nil
	}
	return writeMeta(st.disk.store, st.disk.dir, metaOf(st))
}

// diskRemove deletes st's files. Caller holds s.mu.
func (s *Server) diskRemove(st *stream) {
	if st.disk != nil {
		st.disk.remove()
		st.disk = nil
	}
}

func (ds *diskStream) remove() {
	_ = os.RemoveAll(ds.dir)
	_ = ds.store.syncDir(ds.store.root)
}

// write appends one record for an append request. Caller holds s.mu, so
// records land in stream order. The returned commit function fsyncs and
// closes the log; run it after unlocking and before acknowledging.
func (ds *diskStream) write(rec *logRecord, body []byte, msgs [][]byte) (commit func() error, err error) {
	data := body
	if len(msgs) > 0 {
		n := 0
		for _, m := range msgs {
			n += len(m) + 1
		}
		data = make([]byte, 0, n)
		for _, m := range msgs {
			data = append(data, m...)
			data = append(data, ',')
		}
	}
	f, err := os.OpenFile(ds.logPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	if err := writeRecord(f, rec, data); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		err := ds.store.sync(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}, nil
}

// writeRecord writes one framed, checksummed record with a single write.
func writeRecord(f *os.File, rec *logRecord, data []byte) error {
	hdr, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	buf := make([]byte, 12, 12+len(hdr)+len(data))
	buf = append(buf, hdr...)
	buf = append(buf, data...)
	binary.LittleEndian.PutUint32(buf[0:4], uint32(len(hdr)))
	binary.LittleEndian.PutUint32(buf[4:8], uint32(len(data)))
	binary.LittleEndian.PutUint32(buf[8:12], crc32.Checksum(buf[12:], crcTable))
	_, err = f.Write(buf)
	return err
}
