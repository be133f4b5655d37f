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

// CallStarted implements llm.CallObserver: it times the call and counts it
// with its tokens.
func (m *Metrics) CallStarted(ctx context.Context, provider, model string) (context.Context, func(*llm.Response, error)) {
	start := m.clock.Now()
	return ctx, func(resp *llm.Response, err error) {
		s := &m.llm
		model := s.model(provider, model)
		s.seconds.WithLabelValues(provider, model).Observe(m.clock.Now().Sub(start).Seconds())
		if err != nil {
			s.calls.WithLabelValues(provider, model, "error").Inc()
			return
		}
		s.calls.WithLabelValues(provider, model, "ok").Inc()
		s.tokens.WithLabelValues(provider, model, "prompt").Add(float64(resp.Usage.PromptTokens))
		s.tokens.WithLabelValues(provider, model, "completion").Add(float64(resp.Usage.CompletionTokens))
	}
}

var _ llm.CallObserver = (*Metrics)(nil)
