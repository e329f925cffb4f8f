package durableotel

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"

	"github.com/durablego/durable"
)

// errorType is the error.type attribute of a failure: the HTTP status
// code of an error answer (as the HTTP conventions say), else one of a few
// low-cardinality classes; "" for nil.
func errorType(err error) string {
	if err == nil {
		return ""
	}
	var e *durable.Error
	if errors.As(err, &e) && e.Status >= 300 {
		return strconv.Itoa(e.Status)
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return errorTypeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return errorTypeTimeout
	case errors.Is(err, durable.ErrDisconnected):
		return errorTypeDisconnected
	case errors.Is(err, durable.ErrResponseTooLarge):
		return errorTypeTooLarge
	case errors.Is(err, durable.ErrProtocol):
		return errorTypeProtocol
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorTypeTruncated
	case errors.As(err, &ne) && ne.Timeout():
		return errorTypeTimeout
	case errors.As(err, &ne), errors.Is(err, io.EOF):
		// io.EOF: the server closed the connection without an answer.
		return errorTypeConnection
	}
	return errorTypeOther
}
