package metrics

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kelpie/kelpie/llm"
)

// MaxModelLabels bounds the provider/model pairs that get series of their
// own: model names come from agents' settings, and each pair costs series
// for as long as the process lives. Later pairs are counted as model
// "other".
const MaxModelLabels = 64

type llmSeries struct {
	calls   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	tokens  *prometheus.CounterVec

	mu     sync.Mutex
	models map[[2]string]bool
}

func newLLMSeries() llmSeries {
	return llmSeries{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "llm", Name: "calls_total",
			Help: "Model calls, by provider, model and outcome (ok or error)."}, []string{"provider", "model", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "llm", Name: "call_duration_seconds",
			Help: "Time a model call took, to its last token, by provider and model.", Buckets: latencyBuckets}, []string{"provider", "model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "llm", Name: "tokens_total",
			Help: "Tokens models reported, by provider, model and direction (prompt or completion)."}, []string{"provider", "model", "direction"}),
		models: map[[2]string]bool{},
	}
}

// model is the model label for a call: the model itself while fewer than
// MaxModelLabels pairs have been seen, else "other".
func (s *llmSeries) model(provider, model string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{provider, model}
	if s.models[key] {
		return model
	}
	if len(s.models) >= MaxModelLabels {
		return "other"
	}
	s.models[key] = true
	return model
}

// InstrumentLLM replaces every provider in reg with one that records its
// calls. Providers registered later are not instrumented.
func (m *Metrics) InstrumentLLM(reg *llm.Registry) {
	for _, name := range reg.Configured() {
		p, ok := reg.Provider(name)
		if !ok {
			continue
		}
		inst := &instrumented{Provider: p, m: m}
		if lister, ok := p.(llm.ModelLister); ok {
			reg.Register(&instrumentedLister{inst, lister})
		} else {
			reg.Register(inst)
		}
	}
}

// instrumented is a provider whose calls are recorded.
type instrumented struct {
	llm.Provider
	m *Metrics
}

func (p *instrumented) Complete(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (*llm.Response, error) {
	start := p.m.clock.Now()
	resp, err := p.Provider.Complete(ctx, req, onDelta)
	s, provider := &p.m.llm, p.Name()
	model := s.model(provider, req.Model)
	s.seconds.WithLabelValues(provider, model).Observe(p.m.clock.Now().Sub(start).Seconds())
	if err != nil {
		s.calls.WithLabelValues(provider, model, "error").Inc()
		return resp, err
	}
	s.calls.WithLabelValues(provider, model, "ok").Inc()
	s.tokens.WithLabelValues(provider, model, "prompt").Add(float64(resp.Usage.PromptTokens))
	s.tokens.WithLabelValues(provider, model, "completion").Add(float64(resp.Usage.CompletionTokens))
	return resp, nil
}

// instrumentedLister keeps a provider's model listing.
type instrumentedLister struct {
	*instrumented
	llm.ModelLister
}
