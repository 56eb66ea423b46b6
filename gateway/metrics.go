package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// statusClasses are the values of the status_class label, indexed by
// status/100 - 1.
var statusClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClassIndex(status int) int {
	i := status/100 - 1
	if i < 0 || i > 4 {
		return 4 // a status outside 100-599 is a server bug
	}
	return i
}

// Upstream error kinds, the values of arbor_upstream_errors_total's kind.
const (
	UpstreamUnavailable = "unavailable" // dial failed, refused, reset, closed early
	UpstreamTimeout     = "timeout"     // no response header within the timeout
	UpstreamAborted     = "aborted"     // the upstream broke off a response body
)

// Metrics are the Prometheus collectors of the gateway. The collectors are
// exported so that other packages can report into them (StoreErrors) and
// tests can read them; the hot path uses children resolved once in
// NewMetrics, so a request costs a few atomic adds and no label lookups.
type Metrics struct {
	// Requests counts finished requests by route class and status class.
	// arbor_http_requests_total{route,status_class}
	Requests *prometheus.CounterVec
	// Duration observes request duration in seconds, to the last body byte
	// for relayed bodies. arbor_http_request_duration_seconds{route,status_class}
	Duration *prometheus.HistogramVec
	// InFlight is the number of requests being served.
	// arbor_http_requests_in_flight
	InFlight prometheus.Gauge
	// UpstreamErrors counts failed exchanges with the upstream by kind
	// (unavailable, timeout, aborted). arbor_upstream_errors_total{kind}
	UpstreamErrors *prometheus.CounterVec
	// StoreErrors counts failed store operations by operation name; the
	// store's caller increments it, e.g. m.StoreError("get_session").
	// Keep op names a fixed set. arbor_store_errors_total{op}
	StoreErrors *prometheus.CounterVec

	requests [numClasses][5]prometheus.Counter
	duration [numClasses][5]prometheus.Observer
	upstream map[string]prometheus.Counter
}

// durationBuckets span 1 ms (a health check) to 60 s (a slow upstream).
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// NewMetrics creates the gateway's collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_http_requests_total",
			Help: "HTTP requests served, by route class and status class.",
		}, []string{"route", "status_class"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "arbor_http_request_duration_seconds",
			Help:    "Time from receiving a request to its last response byte, by route class and status class.",
			Buckets: durationBuckets,
		}, []string{"route", "status_class"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "arbor_http_requests_in_flight",
			Help: "HTTP requests being served, including relayed bodies still streaming.",
		}),
		UpstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_upstream_errors_total",
			Help: "Failed exchanges with the upstream: unavailable (dial/connection), timeout (no response header in time), aborted (body cut off).",
		}, []string{"kind"}),
		StoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_store_errors_total",
			Help: "Failed store operations, by operation.",
		}, []string{"op"}),
		upstream: make(map[string]prometheus.Counter, 3),
	}
	for _, c := range []prometheus.Collector{m.Requests, m.Duration, m.InFlight, m.UpstreamErrors, m.StoreErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gateway: registering metrics: %w (is a second gateway using the same registry?)", err)
		}
	}
	for cl := range numClasses {
		for sc, name := range statusClasses {
			m.requests[cl][sc] = m.Requests.WithLabelValues(cl.String(), name)
			m.duration[cl][sc] = m.Duration.WithLabelValues(cl.String(), name)
		}
	}
	for _, k := range []string{UpstreamUnavailable, UpstreamTimeout, UpstreamAborted} {
		m.upstream[k] = m.UpstreamErrors.WithLabelValues(k)
	}
	return m, nil
}

// StoreError counts one failed store operation. op must come from a fixed
// set of operation names (never user input), e.g. "get_session".
func (m *Metrics) StoreError(op string) {
	m.StoreErrors.WithLabelValues(op).Inc()
}

func (m *Metrics) upstreamError(kind string) {
	if c, ok := m.upstream[kind]; ok {
		c.Inc()
	}
}
