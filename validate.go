package durable

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

// maxOffsetLen bounds an offset or cursor accepted from a server.
const maxOffsetLen = 1024

// checkOffset validates an offset the server returned: present, not a
// sentinel, bounded, and free of the characters the protocol forbids.
func checkOffset(name, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: missing %s", ErrProtocol, name)
	case v == protocol.OffsetStart || v == protocol.OffsetNow:
		return fmt.Errorf("%w: %s is the reserved sentinel %q", ErrProtocol, name, v)
	case len(v) > maxOffsetLen:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrProtocol, name, maxOffsetLen)
	case strings.ContainsAny(v, ",&=?/"):
		return fmt.Errorf("%w: %s %q contains a reserved character", ErrProtocol, name, v)
	case hasControl(v):
		return fmt.Errorf("%w: %s contains a control character", ErrProtocol, name)
	}
	return nil
}

func hasControl(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return true
		}
	}
	return false
}

// nextOffset reads and validates Stream-Next-Offset.
func nextOffset(h http.Header) (Offset, error) {
	v := h.Get(protocol.HeaderNextOffset)
	if err := checkOffset(protocol.HeaderNextOffset, v); err != nil {
		return "", err
	}
	return Offset(v), nil
}

// checkCursor validates an optional Stream-Cursor value.
func checkCursor(v string) error {
	if len(v) > maxOffsetLen || hasControl(v) {
		return fmt.Errorf("%w: malformed %s", ErrProtocol, protocol.HeaderCursor)
	}
	return nil
}

// validProducer checks the producer triple before it is sent.
func validProducer(p *Producer) error {
	if p == nil {
		return nil
	}
	switch {
	case p.ID == "" || hasControl(p.ID):
		return fmt.Errorf("%w: producer ID must be non-empty printable text", ErrInvalidArgument)
	case p.Epoch < 0 || p.Epoch > protocol.MaxProducerNumber:
		return fmt.Errorf("%w: producer epoch %d out of [0, 2^53-1]", ErrInvalidArgument, p.Epoch)
	case p.Seq < 0 || p.Seq > protocol.MaxProducerNumber:
		return fmt.Errorf("%w: producer seq %d out of [0, 2^53-1]", ErrInvalidArgument, p.Seq)
	}
	return nil
}

// validHeaderValue rejects values that cannot travel in a header.
func validHeaderValue(name, v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("%w: %s contains a line break or NUL", ErrInvalidArgument, name)
	}
	return nil
}

// ttlSeconds renders a TTL as whole seconds.
func ttlSeconds(d time.Duration) (string, error) {
	if d < 0 || d%time.Second != 0 {
		return "", fmt.Errorf("%w: TTL %v must be a non-negative whole number of seconds", ErrInvalidArgument, d)
	}
	return fmt.Sprint(int64(d / time.Second)), nil
}
