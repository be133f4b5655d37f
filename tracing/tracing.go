// Package tracing records a trace of each request with OpenTelemetry: a
// server span per HTTP request (continuing the caller's trace when it sends
// a W3C traceparent), and under it a span per actor invocation, storage
// commit and model call. A turn's model calls run after the request that
// started it may have answered; their spans still belong to its trace.
//
// Tracing is off unless the standard OTEL_* variables configure an OTLP
// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): then spans are exported over
// OTLP/HTTP in batches, sampled as OTEL_TRACES_SAMPLER says (all by
// default), with OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES honoured.
// Like package metrics, it reaches the layers below through their hooks
// only; no other package imports OpenTelemetry.
package tracing

import (
	"context"
	"errors"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/api"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/llm"
)

// Tracer records spans. Create it with FromEnv or New; stop it with
// Shutdown, which flushes what is buffered.
type Tracer struct {
	tp   *sdktrace.TracerProvider
	tr   trace.Tracer
	prop propagation.TextMapPropagator
}

// Configured reports whether getenv configures an OTLP endpoint for traces.
func Configured(getenv func(string) string) bool {
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// FromEnv returns a Tracer exporting over OTLP/HTTP as the OTEL_*
// variables say, or nil when they configure no endpoint.
func FromEnv(ctx context.Context, getenv func(string) string, version string) (*Tracer, error) {
	if !Configured(getenv) {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "kelpie"), attribute.String("service.version", version)),
		resource.WithFromEnv())
	if err != nil {
		return nil, errors.Join(err, exp.Shutdown(ctx))
	}
	return newTracer(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// New returns a Tracer that hands each span to exp as it ends (tests use
// an in-memory exporter).
func New(exp sdktrace.SpanExporter) *Tracer { return newTracer(sdktrace.WithSyncer(exp)) }

func newTracer(opts ...sdktrace.TracerProviderOption) *Tracer {
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracer{tp: tp, tr: tp.Tracer("github.com/kelpie/kelpie"),
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
}

// Shutdown exports what is buffered and stops.
func (t *Tracer) Shutdown(ctx context.Context) error { return t.tp.Shutdown(ctx) }

// Handler starts a server span for each request to h, continuing the
// trace the request's traceparent header names, if any.
func (t *Tracer) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.tr.Start(ctx, "HTTP "+r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
		defer span.End()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// ObserveRequest names the request's span by its route and records its
// status and request id (for api.Options.Observe).
func (t *Tracer) ObserveRequest(r *http.Request, a api.Answered) {
	span := trace.SpanFromContext(r.Context())
	if a.Route != "" {
		span.SetName(a.Method + " " + a.Route)
		span.SetAttributes(attribute.String("http.route", a.Route))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", a.Status), attribute.String("kelpie.request_id", api.RequestID(r.Context())))
	if a.ErrorKind != "" {
		span.SetAttributes(attribute.String("error.type", a.ErrorKind))
	}
	if a.Status >= 500 {
		span.SetStatus(codes.Error, a.ErrorKind)
	}
}

// ended ends span, recording err.
func ended(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// InvokeStarted implements actor.InvokeObserver.
func (t *Tracer) InvokeStarted(ctx context.Context, id actor.ID, op string) (context.Context, func(error)) {
	ctx, span := t.tr.Start(ctx, "actor "+id.Namespace+" "+op,
		trace.WithAttributes(attribute.String("kelpie.actor", id.String()), attribute.String("kelpie.op", op)))
	return ctx, func(err error) { ended(span, err) }
}

// CommitStarted implements kv.CommitObserver.
func (t *Tracer) CommitStarted(ctx context.Context) func(error) {
	_, span := t.tr.Start(ctx, "kv commit")
	return func(err error) { ended(span, err) }
}

// CallStarted implements llm.CallObserver.
func (t *Tracer) CallStarted(ctx context.Context, provider, model string) (context.Context, func(*llm.Response, error)) {
	ctx, span := t.tr.Start(ctx, "llm "+provider+" "+model, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("gen_ai.system", provider), attribute.String("gen_ai.request.model", model)))
	return ctx, func(resp *llm.Response, err error) {
		if resp != nil {
			span.SetAttributes(attribute.Int("gen_ai.usage.input_tokens", resp.Usage.PromptTokens),
				attribute.Int("gen_ai.usage.output_tokens", resp.Usage.CompletionTokens))
		}
		ended(span, err)
	}
}

var (
	_ actor.InvokeObserver = (*Tracer)(nil)
	_ kv.CommitObserver    = (*Tracer)(nil)
	_ llm.CallObserver     = (*Tracer)(nil)
)
