package testserver

// logRecord is one entry of a stream's on-disk log: an append with the
// state changes that happen atomically with it.
type logRecord struct {
	Len   int64          `json:"n,omitempty"` // raw bytes (non-JSON streams)
	Msgs  []int64        `json:"m,omitempty"` // JSON message lengths incl. separator
	Seq   string         `json:"s,omitempty"` // Stream-Seq accepted
	Prod  *producerTuple `json:"p,omitempty"` // producer state after the append
	Close bool           `json:"c,omitempty"` // stream closed by this record
}

// diskStore is the data-directory backend (nil in memory mode).
type diskStore struct{}

// diskStream is one stream's files.
type diskStream struct{}

func (s *Server) openDisk() error { s.disk = &diskStore{}; return nil }
func (s *Server) closeDisk()      {}

func (s *Server) diskCreate(st *stream, lens []int64) error { return nil }
func (s *Server) diskMeta(st *stream) error                 { return nil }
func (s *Server) diskRemove(st *stream)                     {}

func (d *diskStream) write(rec *logRecord, body []byte, msgs [][]byte) error { return nil }
func (d *diskStream) sync() error                                            { return nil }
