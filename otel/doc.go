// Package durableotel records the metrics and traces of durable Clients,
// Readers and Writers with the OpenTelemetry Go API.
//
// It lives in a module of its own (github.com/durablego/durable/otel), so
// that the core module depends on no OpenTelemetry package. Metric and span
// names follow the OpenTelemetry semantic conventions for HTTP clients and
// messaging where one exists; the others are in the durable.* namespace.
// The README's OpenTelemetry section has the table of every name.
package durableotel
