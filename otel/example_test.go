package durableotel_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/durablego/durable"
	durableotel "github.com/durablego/durable/otel"
	"github.com/durablego/durable/testserver"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A Telemetry is a durable hook: give it to NewClient with WithHooks, and
// every Reader and Writer of the Client is measured and traced. Here the
// SDK's in-memory reader and span recorder stand for the exporters a
// service would use (OTLP, Prometheus, stdout).
func Example() {
	srv := testserver.New()
	defer srv.Close()
	ctx := context.Background()

	metrics := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	tel, err := durableotel.New(
		durableotel.WithMeterProvider(mp),
		durableotel.WithTracerProvider(tp),
		durableotel.WithPropagator(propagation.TraceContext{}), // send the W3C trace context to the server
	)
	if err != nil {
		log.Fatal(err)
	}
	defer tel.Close()

	c, err := durable.NewClient(srv.URL(), durable.WithHooks(tel))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Create(ctx, "orders", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		log.Fatal(err)
	}
	w, err := durable.NewWriter(c, "orders", durable.JSONCodec[map[string]int]{})
	if err != nil {
		log.Fatal(err)
	}
	for i := range 10 {
		if err := w.Write(ctx, map[string]int{"order": i}); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		log.Fatal(err)
	}
	r, err := durable.NewReader(c, "orders", durable.JSONCodec[map[string]int]{}, durable.WithLive(durable.LiveNone), durable.WithManualCommit())
	if err != nil {
		log.Fatal(err)
	}
	for _, err := range r.Messages(ctx) {
		if err != nil && !errors.Is(err, durable.ErrCaughtUp) {
			log.Fatal(err)
		}
	}
	if err := r.Close(ctx); err != nil {
		log.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := metrics.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if d, ok := m.Data.(metricdata.Sum[int64]); ok && (m.Name == "messaging.client.sent.messages" || m.Name == "messaging.client.consumed.messages") {
			fmt.Println(m.Name, d.DataPoints[0].Value)
		}
	}
	fmt.Println("first span:", spans.Ended()[0].Name())
	// Output:
	// messaging.client.sent.messages 10
	// messaging.client.consumed.messages 10
	// first span: append /v1/stream/orders
}
