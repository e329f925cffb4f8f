package durable

import (
	"net/http"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

// statusError turns a non-success response into an *Error. Statuses map to
// sentinels (see statusSentinel); 403 and 409 are refined by the response
// headers, never by the body:
//
//	403 + Producer-Epoch, on a request with producer headers → ErrStaleEpoch (ServerEpoch set)
//	409 + Stream-Closed: true                                 → ErrStreamClosed (NextOffset set when sent)
//	409 + Producer-Expected-Seq, on a producer request        → ErrProducerSeqGap (ExpectedSeq/ReceivedSeq)
//	409 on PUT                                                → ErrStreamExists
//	409 on POST with Stream-Seq                               → ErrSeqConflict
//	409 on POST without Stream-Seq                            → ErrContentTypeMismatch
//
// The last two follow from PROTOCOL.md §5.2: once a closed stream and a
// producer gap are ruled out by their headers, the only 409 causes left for
// an append are a content-type mismatch and a Stream-Seq regression, and
// the latter needs a Stream-Seq header. When both are possible (Stream-Seq
// sent and the content type differs too) the server's order of checks
// decides; appendOnce disambiguates that case with a HEAD (see
// refineSeqConflict).
func (c *Client) statusError(cl *call, resp *response) *Error {
	e := &Error{
		Op:      cl.op,
		URL:     redactURL(cl.url),
		Status:  resp.status,
		Message: scrubSecrets(excerpt(resp.body), requestSecrets(resp.req)),
		Err:     statusSentinel(resp.status),
	}
	if d, ok := retryAfter(resp.header, time.Now()); ok {
		e.RetryAfter = d
	}
	h := resp.header
	switch resp.status {
	case http.StatusForbidden:
		if cl.producer {
			if ep, ok := protocol.ParseProducerNumber(h.Get(protocol.HeaderProducerEpoch)); ok {
				e.Err, e.ServerEpoch = ErrStaleEpoch, ep
			}
		}
	case http.StatusConflict:
		switch {
		case protocol.IsTrue(h.Get(protocol.HeaderClosed)):
			e.Err = ErrStreamClosed
			if v := h.Get(protocol.HeaderNextOffset); checkOffset(protocol.HeaderNextOffset, v) == nil {
				e.NextOffset = Offset(v)
			}
		case cl.producer && h.Get(protocol.HeaderProducerExpected) != "":
			e.Err = ErrProducerSeqGap
			e.ExpectedSeq, _ = protocol.ParseProducerNumber(h.Get(protocol.HeaderProducerExpected))
			e.ReceivedSeq, _ = protocol.ParseProducerNumber(h.Get(protocol.HeaderProducerReceived))
		case cl.method == http.MethodPut:
			e.Err = ErrStreamExists
		case cl.method == http.MethodPost && cl.header.Get(protocol.HeaderSeq) != "":
			e.Err = ErrSeqConflict
		case cl.method == http.MethodPost:
			e.Err = ErrContentTypeMismatch
		}
	}
	return e
}

// protocolError reports a response that broke the protocol.
func (c *Client) protocolError(cl *call, resp *response, err error) *Error {
	return &Error{Op: cl.op, URL: redactURL(cl.url), Status: resp.status, Err: err}
}
