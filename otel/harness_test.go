package durableotel

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Telemetry on the SDK's in-memory exporters: a
// ManualReader for the metrics and a SpanRecorder for the spans.
type recorder struct {
	*Telemetry
	metrics *sdkmetric.ManualReader
	spans   *tracetest.SpanRecorder
}

// newRecorder returns a Telemetry that records in memory; it is closed
// when the test ends.
func newRecorder(t *testing.T, opts ...Option) *recorder {
	t.Helper()
	mr := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(mr))
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	tel, err := New(append([]Option{WithMeterProvider(mp), WithTracerProvider(tp)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, tel.Close())
		require.NoError(t, mp.Shutdown(context.Background()))
		require.NoError(t, tp.Shutdown(context.Background()))
	})
	return &recorder{Telemetry: tel, metrics: mr, spans: sr}
}

// withW3C is the option that sends the W3C trace context.
var withW3C = WithPropagator(propagation.TraceContext{})

// collect returns every metric recorded so far.
func (r *recorder) collect(t *testing.T) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.metrics.Collect(context.Background(), &rm))
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, instrumentationScope, sm.Scope.Name)
		out = append(out, sm.Metrics...)
	}
	return out
}

// find returns the metric named name (its zero value and false when none
// was recorded).
func find(ms []metricdata.Metrics, name string) (metricdata.Metrics, bool) {
	i := slices.IndexFunc(ms, func(m metricdata.Metrics) bool { return m.Name == name })
	if i < 0 {
		return metricdata.Metrics{}, false
	}
	return ms[i], true
}

// has reports whether set holds every one of want.
func has(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// sum adds the values of the data points of the counter (or up-down
// counter) name whose attributes hold every one of want.
func sum(t *testing.T, ms []metricdata.Metrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	return countIf(t, ms, name, func(set attribute.Set) bool { return has(set, want) })
}

// countIf adds the values of the data points of the counter (or up-down
// counter) name whose attributes pass keep.
func countIf(t *testing.T, ms []metricdata.Metrics, name string, keep func(attribute.Set) bool) int64 {
	t.Helper()
	m, ok := find(ms, name)
	if !ok {
		return 0
	}
	d, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T, not an int64 sum", name, m.Data)
	var n int64
	for _, p := range d.DataPoints {
		if keep(p.Attributes) {
			n += p.Value
		}
	}
	return n
}

// hist adds up the data points of the histogram name whose attributes
// hold every one of want: the count of recordings and their sum.
func hist[N int64 | float64](t *testing.T, ms []metricdata.Metrics, name string, want ...attribute.KeyValue) (count uint64, total N) {
	t.Helper()
	m, ok := find(ms, name)
	if !ok {
		return 0, 0
	}
	d, ok := m.Data.(metricdata.Histogram[N])
	require.True(t, ok, "%s is a %T", name, m.Data)
	for _, p := range d.DataPoints {
		if has(p.Attributes, want) {
			count += p.Count
			total += p.Sum
		}
	}
	return count, total
}

// gauge returns the values of the data points of the gauge name whose
// attributes hold every one of want.
func gauge[N int64 | float64](t *testing.T, ms []metricdata.Metrics, name string, want ...attribute.KeyValue) []N {
	t.Helper()
	m, ok := find(ms, name)
	if !ok {
		return nil
	}
	d, ok := m.Data.(metricdata.Gauge[N])
	require.True(t, ok, "%s is a %T", name, m.Data)
	var out []N
	for _, p := range d.DataPoints {
		if has(p.Attributes, want) {
			out = append(out, p.Value)
		}
	}
	return out
}

// exported is every text the recorder would export: the names, attribute
// keys and values of every metric data point, and of every span with its
// events, links and status.
func (r *recorder) exported(t *testing.T) []string {
	t.Helper()
	var out []string
	attrs := func(set attribute.Set) {
		for _, kv := range set.ToSlice() {
			out = append(out, string(kv.Key)+"="+kv.Value.String())
		}
	}
	for _, m := range r.collect(t) {
		out = append(out, m.Name, m.Description, m.Unit)
		var sets []attribute.Set
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			sets = pointSets(d.DataPoints)
		case metricdata.Gauge[int64]:
			sets = pointSets(d.DataPoints)
		case metricdata.Gauge[float64]:
			sets = pointSets(d.DataPoints)
		case metricdata.Histogram[int64]:
			sets = histSets(d.DataPoints)
		case metricdata.Histogram[float64]:
			sets = histSets(d.DataPoints)
		default:
			t.Fatalf("metric %s: data %T not searched", m.Name, m.Data)
		}
		for _, set := range sets {
			attrs(set)
		}
	}
	for _, s := range r.spans.Ended() {
		out = append(out, s.Name(), s.Status().Description)
		attrs(attribute.NewSet(s.Attributes()...))
		for _, e := range s.Events() {
			out = append(out, e.Name)
			attrs(attribute.NewSet(e.Attributes...))
		}
		for _, l := range s.Links() {
			attrs(attribute.NewSet(l.Attributes...))
		}
		attrs(*s.Resource().Set())
	}
	return out
}

// pointSets returns the attributes of each data point.
func pointSets[N int64 | float64](ps []metricdata.DataPoint[N]) []attribute.Set {
	out := make([]attribute.Set, len(ps))
	for i, p := range ps {
		out[i] = p.Attributes
	}
	return out
}

// histSets returns the attributes of each histogram data point.
func histSets[N int64 | float64](ps []metricdata.HistogramDataPoint[N]) []attribute.Set {
	out := make([]attribute.Set, len(ps))
	for i, p := range ps {
		out[i] = p.Attributes
	}
	return out
}

// ended returns the ended spans named name.
func (r *recorder) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// attr returns the value of key among the attributes of s, as text.
func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

// eventNames lists the names of the events of s.
func eventNames(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, e := range s.Events() {
		out = append(out, e.Name)
	}
	return out
}

// describe renders spans for a failure message.
func describe(spans []sdktrace.ReadOnlySpan) string {
	out := ""
	for _, s := range spans {
		out += fmt.Sprintf("%s %v %v\n", s.Name(), s.Attributes(), eventNames(s))
	}
	return out
}
