package main

import "encoding/json"

// command is one line the runner sends: every field of every command type
// of the client conformance protocol, decoded by type.
type command struct {
	Type string `json:"type"`

	// init
	ServerURL string `json:"serverUrl"`
	TimeoutMs *int64 `json:"timeoutMs"` // init: operations; read: how long to read

	// stream commands
	Path        string            `json:"path"`
	ContentType string            `json:"contentType"`
	TTLSeconds  *int64            `json:"ttlSeconds"`
	ExpiresAt   string            `json:"expiresAt"`
	Headers     map[string]string `json:"headers"`
	Closed      bool              `json:"closed"`
	Data        *string           `json:"data"`
	Binary      bool              `json:"binary"`
	Seq         *int64            `json:"seq"`

	// producers
	ProducerID    string   `json:"producerId"`
	ProducerEpoch *int64   `json:"producerEpoch"`
	ProducerSeq   *int64   `json:"producerSeq"`
	Epoch         int64    `json:"epoch"`
	AutoClaim     bool     `json:"autoClaim"`
	Items         []string `json:"items"`
	MaxInFlight   *int     `json:"maxInFlight"`

	// read
	Offset          string          `json:"offset"`
	Live            json.RawMessage `json:"live"` // false | true | "long-poll" | "sse"
	MaxChunks       *int            `json:"maxChunks"`
	WaitForUpToDate bool            `json:"waitForUpToDate"`

	// dynamic headers and params
	Name         string `json:"name"`
	ValueType    string `json:"valueType"`
	InitialValue string `json:"initialValue"`

	// validate
	Target *validateTarget `json:"target"`

	// benchmark
	IterationID string          `json:"iterationId"`
	Operation   *benchOperation `json:"operation"`
}

type validateTarget struct {
	Target string `json:"target"`
	// retry-options
	MaxRetries     *float64 `json:"maxRetries"`
	InitialDelayMs *float64 `json:"initialDelayMs"`
	MaxDelayMs     *float64 `json:"maxDelayMs"`
	Multiplier     *float64 `json:"multiplier"`
	// idempotent-producer
	ProducerID    *string  `json:"producerId"`
	Epoch         *float64 `json:"epoch"`
	MaxBatchBytes *float64 `json:"maxBatchBytes"`
	MaxBatchItems *float64 `json:"maxBatchItems"`
}

type benchOperation struct {
	Op            string `json:"op"`
	Path          string `json:"path"`
	Size          int    `json:"size"`
	Offset        string `json:"offset"`
	Live          string `json:"live"`
	ContentType   string `json:"contentType"`
	Count         int    `json:"count"`
	Concurrency   int    `json:"concurrency"`
	ExpectedCount *int   `json:"expectedCount"`
}

// result is one line the adapter answers: the union of every result type.
// Optional fields are pointers or omitted when empty, so each result holds
// only what protocol.ts defines for its type.
type result struct {
	Type    string `json:"type"`
	Success bool   `json:"success"`

	// init
	ClientName    string    `json:"clientName,omitempty"`
	ClientVersion string    `json:"clientVersion,omitempty"`
	Features      *features `json:"features,omitempty"`

	Status int `json:"status,omitempty"`

	Offset       string       `json:"offset,omitempty"`
	FinalOffset  *string      `json:"finalOffset,omitempty"`
	Chunks       *[]readChunk `json:"chunks,omitempty"`
	UpToDate     *bool        `json:"upToDate,omitempty"`
	StreamClosed *bool        `json:"streamClosed,omitempty"`
	Cursor       string       `json:"cursor,omitempty"`
	ContentType  string       `json:"contentType,omitempty"`
	TTLSeconds   *int64       `json:"ttlSeconds,omitempty"`
	ExpiresAt    string       `json:"expiresAt,omitempty"`

	HeadersSent map[string]string `json:"headersSent,omitempty"`
	ParamsSent  map[string]string `json:"paramsSent,omitempty"`

	Duplicate     *bool  `json:"duplicate,omitempty"`
	ProducerEpoch *int64 `json:"producerEpoch,omitempty"`
	ProducerSeq   *int64 `json:"producerSeq,omitempty"`

	// benchmark
	IterationID string        `json:"iterationId,omitempty"`
	DurationNs  string        `json:"durationNs,omitempty"`
	Metrics     *benchMetrics `json:"metrics,omitempty"`

	// error
	CommandType string         `json:"commandType,omitempty"`
	ErrorCode   string         `json:"errorCode,omitempty"`
	Message     string         `json:"message,omitempty"`
	Details     map[string]any `json:"details,omitempty"`
}

// features are the capabilities reported by init.
type features struct {
	Batching             bool `json:"batching"`
	SSE                  bool `json:"sse"`
	LongPoll             bool `json:"longPoll"`
	Auto                 bool `json:"auto"`
	Streaming            bool `json:"streaming"`
	DynamicHeaders       bool `json:"dynamicHeaders"`
	RetryOptions         bool `json:"retryOptions"`
	BatchItems           bool `json:"batchItems"`
	StrictZeroValidation bool `json:"strictZeroValidation"`
}

type readChunk struct {
	Data   string `json:"data"`
	Binary bool   `json:"binary,omitempty"`
	Offset string `json:"offset,omitempty"`
}

type benchMetrics struct {
	BytesTransferred  int64   `json:"bytesTransferred,omitempty"`
	MessagesProcessed int64   `json:"messagesProcessed,omitempty"`
	OpsPerSecond      float64 `json:"opsPerSecond,omitempty"`
	BytesPerSecond    float64 `json:"bytesPerSecond,omitempty"`
}

// Error codes of protocol.ts.
const (
	codeNetwork         = "NETWORK_ERROR"
	codeTimeout         = "TIMEOUT"
	codeConflict        = "CONFLICT"
	codeNotFound        = "NOT_FOUND"
	codeSeqConflict     = "SEQUENCE_CONFLICT"
	codeStreamClosed    = "STREAM_CLOSED"
	codeInvalidOffset   = "INVALID_OFFSET"
	codeUnexpected      = "UNEXPECTED_STATUS"
	codeParse           = "PARSE_ERROR"
	codeInternal        = "INTERNAL_ERROR"
	codeNotSupported    = "NOT_SUPPORTED"
	codeInvalidArgument = "INVALID_ARGUMENT"
)

func ptr[T any](v T) *T { return &v }
