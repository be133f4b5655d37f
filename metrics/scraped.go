package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// scraped reports the counters the layers below keep, read at each scrape.
type scraped struct{ src Sources }

func desc(subsystem, name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, nil, nil)
}

var (
	activeDesc        = desc("actor", "activations", "Live actor activations now.")
	inFlightDesc      = desc("actor", "mailbox_depth", "Invocations accepted and not yet answered now, over every actor's mailbox.")
	activationsDesc   = desc("actor", "activations_total", "Actor activations started.")
	deactivationsDesc = desc("actor", "deactivations_total", "Actor activations ended: idle, evicted for room under the cap, or at shutdown.")
	capEvictionsDesc  = desc("actor", "cap_evictions_total", "Idle activations evicted to make room under --max-activations.")
	capWaitsDesc      = desc("actor", "cap_waits_total", "Invocations that waited for room under --max-activations (every activation busy).")
	busyDesc          = desc("actor", "busy_total", "Invocations refused because their actor's mailbox was full.")
	discardsDesc      = desc("actor", "discards_total", "In-memory actor states thrown away after a failed invocation.")
	retriesDesc       = desc("actor", "conflict_retries_total", "Invocations re-run after a commit conflict.")
	idemExpiredDesc   = desc("actor", "idempotency_expired_total", "Idempotency records deleted past --idempotency-horizon.")
	turnsDesc         = desc("agent", "turns_total", "Agent turns started.")
	turnsFailedDesc   = desc("agent", "turns_failed_total", "Agent turns that ended in an error.")
	turnsRunningDesc  = desc("agent", "turns_running", "Agent turns running now.")
	stepsDesc         = desc("agent", "steps_total", "Model answers committed as steps of turns.")
	toolCallsDesc     = desc("agent", "tool_calls_total", "Tool calls made by models in committed steps.")
	diskDesc          = desc("storage", "disk_bytes", "Space the store's files take on disk.")
)

func (s *scraped) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{activeDesc, inFlightDesc, activationsDesc, deactivationsDesc, capEvictionsDesc, capWaitsDesc,
		busyDesc, discardsDesc, retriesDesc, idemExpiredDesc, turnsDesc, turnsFailedDesc, turnsRunningDesc, stepsDesc, toolCallsDesc, diskDesc} {
		ch <- d
	}
}

func (s *scraped) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	if svc := s.src.Service; svc != nil {
		c := svc.Counts()
		rt := c.Runtime
		gauge(activeDesc, float64(rt.Active))
		gauge(inFlightDesc, float64(rt.InFlight))
		counter(activationsDesc, rt.Activations)
		counter(deactivationsDesc, rt.Deactivations)
		counter(capEvictionsDesc, rt.CapEvictions)
		counter(capWaitsDesc, rt.CapWaits)
		counter(busyDesc, rt.Busy)
		counter(discardsDesc, rt.Discards)
		counter(retriesDesc, rt.Conflicts)
		counter(idemExpiredDesc, rt.IdemExpired)
		counter(turnsDesc, c.Turns.Turns)
		counter(turnsFailedDesc, c.Turns.Failed)
		gauge(turnsRunningDesc, float64(svc.Stats().Running))
		counter(stepsDesc, c.Turns.Steps)
		counter(toolCallsDesc, c.Turns.ToolCalls)
	}
	if s.src.DiskUsage != nil {
		gauge(diskDesc, float64(s.src.DiskUsage()))
	}
}
