package main

import (
	"errors"

	"github.com/durablego/durable"
)

// newProducerAppender returns an appender that sends through an idempotent
// producer (durable.Writer). Until the Writer is on main it is unavailable.
func newProducerAppender(cl *durable.Client, stream, ct string, f appendFlags) (appender, error) {
	return nil, errors.New("--producer-id is not available yet")
}
