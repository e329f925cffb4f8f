package durableotel

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/durablego/durable"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry records the metrics and traces of the Clients, Readers and
// Writers it is attached to. It is safe for concurrent use; one is
// enough for a whole service.
type Telemetry struct {
	in      *instruments
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator // nil: no trace context in requests
	targets targets
}

// Option configures a Telemetry: pass it to New. Options have the shape
// of the durable package's: New checks them once and fails, with an error
// wrapping durable.ErrInvalidArgument, for a nil provider or propagator
// (leave the option out for the default), a zero Option, or an option
// given twice.
type Option struct {
	name  string // the With… function, for errors
	apply func(*config) error
}

type config struct {
	mp   metric.MeterProvider
	tp   trace.TracerProvider
	prop propagation.TextMapPropagator
}

// option is an Option named name that sets v with set; a nil v is refused.
func option[V comparable](name string, v V, set func(*config, V)) Option {
	return Option{name: name, apply: func(c *config) error {
		var zero V
		if v == zero {
			return fmt.Errorf("%s: nil", name)
		}
		set(c, v)
		return nil
	}}
}

// WithMeterProvider sets the MeterProvider the metrics are recorded with;
// the default is the global one (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return option("WithMeterProvider", mp, func(c *config, mp metric.MeterProvider) { c.mp = mp })
}

// WithTracerProvider sets the TracerProvider the spans are recorded with;
// the default is the global one (otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return option("WithTracerProvider", tp, func(c *config, tp trace.TracerProvider) { c.tp = tp })
}

// WithPropagator makes every request carry the trace context of its span
// in headers written by p: propagation.TraceContext{} sends the W3C
// traceparent and tracestate headers. By default no trace context is
// sent: a server (or a proxy in front of it) sees no tracing headers
// unless they are asked for.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return option("WithPropagator", p, func(c *config, p propagation.TextMapPropagator) { c.prop = p })
}

// New returns a Telemetry. It fails when an option is invalid (see
// Option), or when the MeterProvider refuses an instrument (a conflicting
// registration, for example).
func New(opts ...Option) (*Telemetry, error) {
	var c config
	given := map[string]bool{}
	var errs []error
	for _, o := range opts {
		switch {
		case o.name == "":
			errs = append(errs, errors.New("a zero Option (make options with the With… functions)"))
		case given[o.name]:
			errs = append(errs, fmt.Errorf("%s given twice", o.name))
		default:
			given[o.name] = true
			if err := o.apply(&c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("durableotel: %w: %w", durable.ErrInvalidArgument, errors.Join(errs...))
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	scope := []metric.MeterOption{metric.WithSchemaURL(semconv.SchemaURL)}
	in, err := newInstruments(c.mp.Meter(instrumentationScope, scope...))
	if err != nil {
		_ = in.close()
		return nil, fmt.Errorf("durableotel: %w", err)
	}
	return &Telemetry{
		in:     in,
		tracer: c.tp.Tracer(instrumentationScope, trace.WithSchemaURL(semconv.SchemaURL)),
		prop:   c.prop,
	}, nil
}

// Close stops the observation of the gauges of Writers and Readers (their
// buffers and whether they are up to date). Counters and spans of
// Clients, Readers and Writers still attached go on being recorded.
func (t *Telemetry) Close() error {
	return t.in.close()
}

// inject writes the trace context of ctx into h, when a propagator was
// asked for.
func (t *Telemetry) inject(ctx context.Context, h http.Header) {
	if t.prop != nil {
		t.prop.Inject(ctx, propagation.HeaderCarrier(h))
	}
}
