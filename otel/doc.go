// Package durableotel records the metrics and traces of durable Readers and
// Writers with the OpenTelemetry Go API.
//
// A Telemetry is a hook of a durable Client: it implements every Hook
// interface of the durable package, so every Reader and Writer opened on
// the Client reports to it.
//
//	tel, err := durableotel.New(durableotel.WithPropagator(propagation.TraceContext{}))
//	...
//	c, err := durable.NewClient(url, durable.WithHooks(tel))
//
// It records:
//
//   - a span per batch a Writer sends ("append {stream path}", kind
//     producer) and per read of a Reader ("read {stream path}", kind
//     client), with the stream's path, the status, the attempts and the
//     offsets; retries, a lost batch and a fenced Writer are events of
//     them. With WithPropagator, each request carries the trace context of
//     its batch's or read's span (the W3C traceparent header with
//     propagation.TraceContext);
//   - the metrics of the HTTP client and messaging semantic conventions
//     (requests by operation and outcome with their latency, messages
//     sent and consumed, the duration of batches, reads and commits) and
//     those of the durable.* namespace (retries by cause, bytes, batch
//     sizes, batches in flight, Writers' buffers, lost batches, fencing,
//     whether each Reader is up to date, for how long it has not been, and
//     how far behind it is).
//
// No attribute holds a URL's userinfo or query, where credentials may be:
// a stream is named by its path. The README's section "Metrics and
// traces: OpenTelemetry" has the table of every name.
//
// The package lives in a module of its own (github.com/durablego/durable/otel)
// so that the durable module depends on no OpenTelemetry package.
package durableotel
