package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/api"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/metrics"
	"github.com/kelpie/kelpie/tracing"
)

// observability is what serve wires into the layers' hooks: metrics
// always, traces when the OTEL_* variables configure an exporter.
type observability struct {
	m  *metrics.Metrics
	tr *tracing.Tracer // nil: not configured
}

func newObservability(ctx context.Context, log *slog.Logger) (*observability, error) {
	tr, err := tracing.FromEnv(ctx, os.Getenv, version)
	if err != nil {
		return nil, err
	}
	if tr != nil {
		log.Info("tracing: exporting spans over OTLP/HTTP, as the OTEL_* variables say")
	}
	return &observability{m: metrics.New(clock.Real{}), tr: tr}, nil
}

// close flushes the spans still buffered.
func (o *observability) close(log *slog.Logger) {
	if o.tr == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), serviceCloseTimeout)
	defer cancel()
	if err := o.tr.Shutdown(ctx); err != nil {
		log.Warn("tracing: flushing spans at shutdown", "err", err)
	}
}

// hook watches the store's commits and the models' calls.
func (o *observability) hook(store *kv.DB, models *llm.Registry) {
	if o.tr == nil {
		store.ObserveCommits(o.m)
		models.Observe(o.m)
		return
	}
	store.ObserveCommits(commitObservers{o.m, o.tr})
	models.Observe(callObservers{o.m, o.tr})
}

// invokes is the runtime's invocation observer, nil without traces.
func (o *observability) invokes() actor.InvokeObserver {
	if o.tr == nil {
		return nil
	}
	return o.tr
}

// apiOptions adds the metrics route and the request observer to opts.
func (o *observability) apiOptions(opts api.Options) api.Options {
	opts.Metrics = o.m.Handler()
	opts.Observe = func(r *http.Request, a api.Answered) {
		o.m.ObserveRequest(a)
		if o.tr != nil {
			o.tr.ObserveRequest(r, a)
		}
	}
	return opts
}

// handler wraps the API with a span per request when tracing.
func (o *observability) handler(h http.Handler) http.Handler {
	if o.tr == nil {
		return h
	}
	return o.tr.Handler(h)
}

// commitObservers tells each of its observers of every commit.
type commitObservers []kv.CommitObserver

func (all commitObservers) CommitStarted(ctx context.Context) func(error) {
	ends := make([]func(error), len(all))
	for i, o := range all {
		ends[i] = o.CommitStarted(ctx)
	}
	return func(err error) {
		for _, end := range ends {
			end(err)
		}
	}
}

// callObservers tells each of its observers of every model call, each
// given the context the one before returned.
type callObservers []llm.CallObserver

func (all callObservers) CallStarted(ctx context.Context, provider, model string) (context.Context, func(*llm.Response, error)) {
	ends := make([]func(*llm.Response, error), len(all))
	for i, o := range all {
		ctx, ends[i] = o.CallStarted(ctx, provider, model)
	}
	return ctx, func(resp *llm.Response, err error) {
		for _, end := range ends {
			end(resp, err)
		}
	}
}
