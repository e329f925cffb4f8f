package durableotel

import (
	"testing"

	"github.com/durablego/durable"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestNewOptions: New checks its options once, as the durable package's
// constructors do: a nil provider or propagator, a zero Option and an
// option given twice are errors wrapping durable.ErrInvalidArgument, never
// a silent default.
func TestNewOptions(t *testing.T) {
	t.Parallel()
	mp := sdkmetric.NewMeterProvider()
	tp := sdktrace.NewTracerProvider()
	for _, tc := range []struct {
		name string
		opts []Option
		want string // "" = valid
	}{
		{"none", nil, ""},
		{"all", []Option{WithMeterProvider(mp), WithTracerProvider(tp), WithPropagator(propagation.TraceContext{})}, ""},
		{"nil meter provider", []Option{WithMeterProvider(nil)}, "WithMeterProvider: nil"},
		{"nil tracer provider", []Option{WithTracerProvider(nil)}, "WithTracerProvider: nil"},
		{"nil propagator", []Option{WithPropagator(nil)}, "WithPropagator: nil"},
		{"zero", []Option{{}}, "a zero Option"},
		{"twice", []Option{WithMeterProvider(mp), WithMeterProvider(mp)}, "WithMeterProvider given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel, err := New(tc.opts...)
			if tc.want == "" {
				require.NoError(t, err)
				require.NoError(t, tel.Close())
				return
			}
			require.ErrorIs(t, err, durable.ErrInvalidArgument)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, tel)
		})
	}
}
