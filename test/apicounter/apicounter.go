// Package apicounter counts the API requests a client makes, by verb and resource, from
// the client side: the tests and the benchmark use it to show that a steady state costs
// no writes.
package apicounter

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"k8s.io/client-go/rest"

	"github.com/kubegate/istio-gateway-operator/pkg/apirequest"
)

// Counter is safe for concurrent use.
type Counter struct {
	mu     sync.Mutex
	counts map[string]int
	// byNamespace counts the same keys per namespace of the request path.
	byNamespace map[string]map[string]int
	// refused counts the writes the API server answered with an error, by "code key".
	refused map[string]int
}

// New returns an empty counter.
func New() *Counter {
	return &Counter{counts: map[string]int{}, byNamespace: map[string]map[string]int{}, refused: map[string]int{}}
}

// Wrap returns a copy of cfg whose requests are counted.
func (c *Counter) Wrap(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper { return roundTripper{next: rt, counter: c} })
	return out
}

type roundTripper struct {
	next    http.RoundTripper
	counter *Counter
}

func (r roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	key := Key(req)
	r.counter.record(key, apirequest.Namespace(req.URL.Path))
	resp, err := r.next.RoundTrip(req)
	if verb, _, _ := strings.Cut(key, " "); err == nil && resp.StatusCode >= 400 && apirequest.IsWrite(verb) {
		r.counter.mu.Lock()
		r.counter.refused[fmt.Sprintf("%d %s", resp.StatusCode, key)]++
		r.counter.mu.Unlock()
	}
	return resp, err
}

// RefusedWrites returns the writes the API server answered with an error, keyed by status
// code and Key ("422 PATCH deployments").
func (c *Counter) RefusedWrites() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.refused))
	for k, v := range c.refused {
		out[k] = v
	}
	return out
}

func (c *Counter) record(key, namespace string) {
	c.mu.Lock()
	c.counts[key]++
	if c.byNamespace[namespace] == nil {
		c.byNamespace[namespace] = map[string]int{}
	}
	c.byNamespace[namespace][key]++
	c.mu.Unlock()
}

// WritesIn returns the mutating requests made in one namespace, by key.
func (c *Counter) WritesIn(namespace string) map[string]int {
	c.mu.Lock()
	counts := make(map[string]int, len(c.byNamespace[namespace]))
	for k, v := range c.byNamespace[namespace] {
		counts[k] = v
	}
	c.mu.Unlock()
	return writes(counts)
}

// WritesByNamespace returns the mutating requests of every namespace that had any, by
// namespace and key: which Gateways' objects a surprising write was for.
func (c *Counter) WritesByNamespace() map[string]map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]map[string]int{}
	for ns, counts := range c.byNamespace {
		if w := writes(counts); len(w) > 0 {
			out[ns] = w
		}
	}
	return out
}

// Delta is what grew between two counts of the same keys: the requests made in between.
func Delta[V int | float64](after, before map[string]V) map[string]V {
	out := map[string]V{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// Key is "VERB resource[/subresource]", e.g. "PATCH deployments" or "PATCH gateways/status";
// watches are "WATCH resource".
func Key(req *http.Request) string {
	verb, resource := apirequest.Classify(req)
	return verb + " " + resource
}

// Snapshot returns a copy of the counts.
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Reset forgets every count.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.counts = map[string]int{}
	c.byNamespace = map[string]map[string]int{}
	c.refused = map[string]int{}
	c.mu.Unlock()
}

// Writes returns the mutating requests (POST, PUT, PATCH, DELETE) by key.
func (c *Counter) Writes() map[string]int {
	return writes(c.Snapshot())
}

func writes(counts map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range counts {
		if verb, _, _ := strings.Cut(k, " "); apirequest.IsWrite(verb) {
			out[k] = v
		}
	}
	return out
}

// Format renders counts one per line, sorted, for test failures and reports.
func Format(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%6d %s\n", counts[k], k)
	}
	return b.String()
}
