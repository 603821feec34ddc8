package controllers

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kubegate/istio-gateway-operator/pkg/apirequest"
)

// apiRequests counts the operator's API requests by verb and resource, so that operators
// (and `make bench`) can see what a reconcile costs the API server.
var apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "istio_gateway_operator_api_requests_total",
	Help: "API requests made by the operator, by verb (WATCH for watches) and resource.",
}, []string{"verb", "resource"})

// contentionStops counts the write wars the operator ended by no longer applying an object
// that another writer kept changing back.
var contentionStops = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "istio_gateway_operator_contention_stops_total",
	Help: "Generated objects the operator stopped applying because another field manager kept changing them back, by kind.",
}, []string{"kind"})

func init() {
	ctrlmetrics.Registry.MustRegister(apiRequests, contentionStops)
}

// InstrumentConfig returns a copy of cfg whose requests are counted in
// istio_gateway_operator_api_requests_total.
func InstrumentConfig(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt} })
	return out
}

type countingTransport struct{ next http.RoundTripper }

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	verb, resource := apirequest.Classify(req)
	apiRequests.WithLabelValues(verb, resource).Inc()
	return t.next.RoundTrip(req)
}
