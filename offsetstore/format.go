package offsetstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// On-disk format, version 1. The file is one JSON object:
//
//	{"version":1,"checksum":"sha256:<hex>","data":{"positions":{...},"epochs":{...}}}
//
// checksum is the SHA-256 of the exact bytes of the "data" value as they
// appear in the file, so any edit to data (a torn write, a flipped bit, a
// hand edit) is detected. "version" is checked before anything else, so a
// file from a future format is reported as ErrUnknownVersion, not ErrCorrupt.
const (
	formatVersion  = 1
	checksumPrefix = "sha256:"
)

// state is the content of an offset file.
type state struct {
	positions map[string]Position
	epochs    map[string]int64
}

func newState() *state {
	return &state{positions: make(map[string]Position), epochs: make(map[string]int64)}
}

type positionJSON struct {
	Offset string `json:"offset"`
	Skip   int64  `json:"skip"`
	Meta   string `json:"meta,omitempty"`
}

type dataJSON struct {
	Positions map[string]positionJSON `json:"positions"`
	Epochs    map[string]int64        `json:"epochs"`
}

// encodeState returns the file content for s. The output is deterministic
// (map keys are sorted by encoding/json).
func encodeState(s *state) ([]byte, error) {
	d := dataJSON{
		Positions: make(map[string]positionJSON, len(s.positions)),
		Epochs:    s.epochs,
	}
	for k, p := range s.positions {
		d.Positions[k] = positionJSON(p)
	}
	if d.Epochs == nil {
		d.Epochs = map[string]int64{}
	}
	data, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	var b bytes.Buffer
	b.Grow(len(data) + 128)
	fmt.Fprintf(&b, `{"version":%d,"checksum":"%s%s","data":`, formatVersion, checksumPrefix, hex.EncodeToString(sum[:]))
	b.Write(data)
	b.WriteString("}\n")
	return b.Bytes(), nil
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// decodeState parses file content. Every failure wraps ErrCorrupt or
// ErrUnknownVersion; on success the state satisfies the same validation as
// Save applies to its arguments.
func decodeState(b []byte) (*state, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, corruptf("empty file")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, corruptf("not a JSON object: %v", err)
	}
	if top == nil {
		return nil, corruptf("not a JSON object")
	}
	rawVersion, ok := top["version"]
	if !ok {
		return nil, corruptf("no version field")
	}
	var version int64
	if err := json.Unmarshal(rawVersion, &version); err != nil {
		return nil, corruptf("version is not an integer")
	}
	if version != formatVersion {
		return nil, fmt.Errorf("%w: version %d (this release reads version %d)", ErrUnknownVersion, version, formatVersion)
	}
	for k := range top {
		if k != "version" && k != "checksum" && k != "data" {
			return nil, corruptf("unexpected field %q", k)
		}
	}
	var checksum string
	if err := json.Unmarshal(top["checksum"], &checksum); err != nil || len(checksum) <= len(checksumPrefix) || checksum[:len(checksumPrefix)] != checksumPrefix {
		return nil, corruptf("missing or malformed checksum")
	}
	want, err := hex.DecodeString(checksum[len(checksumPrefix):])
	if err != nil || len(want) != sha256.Size {
		return nil, corruptf("malformed checksum")
	}
	raw, ok := top["data"]
	if !ok {
		return nil, corruptf("no data field")
	}
	if sum := sha256.Sum256(raw); !bytes.Equal(sum[:], want) {
		return nil, corruptf("checksum mismatch")
	}
	var d dataJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, corruptf("bad data: %v", err)
	}
	if d.Positions == nil || d.Epochs == nil {
		return nil, corruptf("data lacks positions or epochs")
	}
	s := &state{positions: make(map[string]Position, len(d.Positions)), epochs: make(map[string]int64, len(d.Epochs))}
	for k, p := range d.Positions {
		pos := Position(p)
		if err := ValidateKey("key", k); err != nil {
			return nil, corruptf("position %q: %v", k, err)
		}
		if err := ValidatePosition(pos); err != nil {
			return nil, corruptf("position %q: %v", k, err)
		}
		s.positions[k] = pos
	}
	for k, e := range d.Epochs {
		if err := ValidateKey("producer ID", k); err != nil {
			return nil, corruptf("epoch %q: %v", k, err)
		}
		if err := validateEpoch(e); err != nil {
			return nil, corruptf("epoch %q: %v", k, err)
		}
		s.epochs[k] = e
	}
	return s, nil
}
