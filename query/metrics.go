package query

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus collectors in their own registry: two servers in
// one process (tests) never collide, and nothing lands in the global default.
type Metrics struct {
	Registry *prometheus.Registry

	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	inference  *prometheus.HistogramVec
	search     *prometheus.HistogramVec
	cache      *prometheus.CounterVec
	uploadSize prometheus.Histogram
	inFlight   prometheus.Gauge
}

// NewMetrics creates the collectors and registers them (and the Go and process
// collectors) in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loopmatch_http_requests_total", Help: "HTTP requests by route, method and status code.",
	}, []string{"route", "method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "loopmatch_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method"})
	m.inference = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "loopmatch_inference_duration_seconds", Help: "ONNX inference time by model role and instrument(s).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"role", "instrument"})
	m.search = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "loopmatch_search_duration_seconds", Help: "Vector search time by collection.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"collection"})
	m.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loopmatch_cache_requests_total", Help: "Cache look-ups by cache and result (hit or miss).",
	}, []string{"cache", "result"})
	m.uploadSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "loopmatch_upload_bytes", Help: "Size of uploaded audio.",
		Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
	})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "loopmatch_http_requests_in_flight", Help: "Requests being served.",
	})
	m.Registry.MustRegister(m.requests, m.latency, m.inference, m.search, m.cache, m.uploadSize, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveInference implements Observer.
func (m *Metrics) ObserveInference(role, instrument string, d time.Duration) {
	m.inference.WithLabelValues(role, instrument).Observe(d.Seconds())
}

// ObserveSearch implements Observer.
func (m *Metrics) ObserveSearch(collection string, d time.Duration) {
	m.search.WithLabelValues(collection).Observe(d.Seconds())
}

func (m *Metrics) cacheResult(cache string, hit bool) {
	r := "miss"
	if hit {
		r = "hit"
	}
	m.cache.WithLabelValues(cache, r).Inc()
}

func (m *Metrics) observeRequest(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
