package durableotel

import "go.opentelemetry.io/otel/attribute"

// The names this package records. Those of the OpenTelemetry semantic
// conventions (HTTP client, messaging) come from the semconv packages
// where the instruments are made (instruments.go); the rest are in the
// durable.* namespace and listed here. README.md has the table of both.

// Metric names outside the semantic conventions.
const (
	metricSentBytes      = "durable.client.sent.bytes"
	metricConsumedBytes  = "durable.client.consumed.bytes"
	metricRetries        = "durable.client.retries"
	metricBatchSize      = "durable.writer.batch.size"
	metricInFlight       = "durable.writer.batches.in_flight"
	metricBufferMessages = "durable.writer.buffer.messages"
	metricBufferBytes    = "durable.writer.buffer.bytes"
	metricLostBatches    = "durable.writer.lost.batches"
	metricFenced         = "durable.writer.fenced"
	metricUpToDate       = "durable.reader.up_to_date"
	metricSinceUpToDate  = "durable.reader.time_since_up_to_date"
	metricLag            = "durable.reader.lag"
)

// Values of the messaging conventions' attributes.
const (
	instrumentationScope = "github.com/durablego/durable/otel"
	messagingSystem      = "durable_streams" // messaging.system
	operationAppend      = "append"          // messaging.operation.name of a batch (type send)
	operationRead        = "read"            // messaging.operation.name of a read (type receive)
	operationCommit      = "commit"          // messaging.operation.name of a commit (type settle)
)

// Span event names.
const (
	spanEventRetry     = "durable.retry"
	spanEventLostBatch = "durable.batch.lost"
	spanEventFenced    = "durable.writer.fenced"
)

// Values of error.type for failures without an HTTP status (one with a
// status has the status code, as the HTTP conventions say).
const (
	errorTypeOther        = "_OTHER"
	errorTypeTimeout      = "timeout"
	errorTypeCanceled     = "canceled"
	errorTypeConnection   = "connection"
	errorTypeTruncated    = "truncated"
	errorTypeProtocol     = "protocol"
	errorTypeTooLarge     = "response_too_large"
	errorTypeDisconnected = "disconnected"
)

// Attribute keys outside the semantic conventions.
const (
	attrOperation     = attribute.Key("durable.operation")      // the Client operation of an HTTP request: create, append, close, head, delete, read, sse
	attrAttempts      = attribute.Key("durable.attempts")       // requests a batch took (1 = no retry)
	attrAttempt       = attribute.Key("durable.attempt")        // a read's attempt (2 = the first retry); on a retry event, the attempt that failed
	attrBytes         = attribute.Key("durable.bytes")          // bytes of stream data a read brought
	attrClosed        = attribute.Key("durable.stream.closed")  // a read reached the end of a closed stream
	attrRetryWait     = attribute.Key("durable.retry.wait")     // on a retry event: seconds before the next attempt
	attrOffset        = attribute.Key("durable.offset")         // the offset a read started from
	attrNextOffset    = attribute.Key("durable.offset.next")    // the offset after the data of a read or an append
	attrUpToDate      = attribute.Key("durable.up_to_date")     // a read reached the tail of the stream
	attrLive          = attribute.Key("durable.live")           // a read's mode: catch-up, long-poll, sse
	attrProducerEpoch = attribute.Key("durable.producer.epoch") // a batch's producer epoch
	attrProducerSeq   = attribute.Key("durable.producer.seq")   // a batch's producer sequence number
	attrServerEpoch   = attribute.Key("durable.server.epoch")   // on a fenced event: the epoch the server holds
)
