package metrics

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/api"
	"github.com/kelpie/kelpie/clock"
)

// namespace prefixes every series Kelpie defines.
const namespace = "kelpie"

// latencyBuckets (seconds) span a cached read (100µs) to a long model call
// (a minute).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Metrics holds Kelpie's series. Create it with New; it is safe for
// concurrent use.
type Metrics struct {
	reg   *prometheus.Registry
	clock clock.Clock

	requests   *prometheus.CounterVec
	reqSeconds *prometheus.HistogramVec
	errors     *prometheus.CounterVec

	commits       *prometheus.CounterVec
	commitSeconds prometheus.Histogram
	syncSeconds   prometheus.Histogram

	llm llmSeries
}

// Sources are what Watch reads at each scrape.
type Sources struct {
	// Service gives the turn and runtime counters.
	Service *agent.Service
	// DiskUsage is the bytes the store takes on disk; nil for a store
	// that keeps none (memory).
	DiskUsage func() uint64
}

// New registers every series, the Go runtime's and the process's; c times
// requests' parts (commits, model calls), nil meaning the system clock.
// The service's series come with Watch.
func New(c clock.Clock) *Metrics {
	if c == nil {
		c = clock.Real{}
	}
	m := &Metrics{reg: prometheus.NewRegistry(), clock: c}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests answered, by method, route pattern and status."}, []string{"method", "route", "status"})
	m.reqSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help: "Time to answer an HTTP request (for a stream, until it ended), by method and route pattern.", Buckets: latencyBuckets}, []string{"method", "route"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "errors_total",
		Help: "Requests answered with an error, by kind: invalid, not_found, busy, disk_full, ... (the service's kinds), unauthorized, internal for a fault."}, []string{"kind"})
	m.commits = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "kv", Name: "commits_total",
		Help: "Storage commits with writes, by outcome: ok, conflict (nothing applied, retried by the runtime), fenced, or error."}, []string{"outcome"})
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "kv", Name: "commit_duration_seconds",
		Help: "Time a commit with writes took, validation to durable.", Buckets: latencyBuckets})
	m.syncSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "kv", Name: "sync_wait_seconds",
		Help: "Time a commit waited for its WAL fsync (shared by the commits waiting at once).", Buckets: latencyBuckets})
	m.llm = newLLMSeries()
	m.reg.MustRegister(m.requests, m.reqSeconds, m.errors, m.commits, m.commitSeconds, m.syncSeconds,
		m.llm.calls, m.llm.seconds, m.llm.tokens,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Watch adds the series read from src at each scrape. Call it once.
func (m *Metrics) Watch(src Sources) { m.reg.MustRegister(&scraped{src: src}) }

// Handler serves the series in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveRequest records an answered request (for api.Options.Observe).
func (m *Metrics) ObserveRequest(a api.Answered) {
	route := a.Route
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(a.Method, route, strconv.Itoa(a.Status)).Inc()
	m.reqSeconds.WithLabelValues(a.Method, route).Observe(a.Duration.Seconds())
	if a.ErrorKind != "" {
		m.errors.WithLabelValues(a.ErrorKind).Inc()
	}
}

// ObserveSyncWait records one commit's wait for its WAL sync.
func (m *Metrics) ObserveSyncWait(d time.Duration) { m.syncSeconds.Observe(d.Seconds()) }

// Total is one of Kelpie's series summed over its labels: a counter's or
// gauge's value, a histogram's number of observations.
type Total struct {
	Name  string
	Value float64
}

// Totals reads every kelpie_ series and the process's resident memory, for
// a page that shows live figures without a Prometheus server.
func (m *Metrics) Totals() ([]Total, error) {
	families, err := m.reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("metrics: gather: %w", err)
	}
	var out []Total
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, namespace+"_") && name != "process_resident_memory_bytes" {
			continue
		}
		t := Total{Name: name}
		for _, s := range f.GetMetric() {
			switch {
			case s.Counter != nil:
				t.Value += s.Counter.GetValue()
			case s.Gauge != nil:
				t.Value += s.Gauge.GetValue()
			case s.Histogram != nil:
				t.Value += float64(s.Histogram.GetSampleCount())
			}
		}
		out = append(out, t)
	}
	return out, nil
}
