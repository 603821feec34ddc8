package faults_test

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// fault is the injector's own answer to one request: an HTTP status and, for throttling,
// whether it carries Retry-After (which client-go's REST client honours by itself, up to
// ten times, before the operator sees an error).
type fault struct {
	code       int
	retryAfter bool
}

// pass lets a request through to the API server.
var pass = fault{}

// decision is what the injector does with one request.
type decision func(req *http.Request) fault

// injector answers chosen requests with an error status, as an overloaded or failing API
// server would, and records every request it sees while a decision is in force.
type injector struct {
	mu       sync.Mutex
	decide   decision
	injected map[int]int
	seen     map[string]int
	// unreachable counts writes that never got an HTTP answer (the API server down),
	// whether or not a decision is in force.
	unreachable atomic.Int64
}

func newInjector() *injector {
	return &injector{injected: map[int]int{}, seen: map[string]int{}}
}

// Wrap returns a copy of cfg whose requests go through the injector.
func (f *injector) Wrap(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper { return injectingTransport{next: rt, injector: f} })
	return out
}

// Set puts a decision in force and clears the counts.
func (f *injector) Set(d decision) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decide, f.injected, f.seen = d, map[int]int{}, map[string]int{}
}

// Clear lets every request through again; the counts stay readable.
func (f *injector) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decide = nil
}

// Injected is how many responses of each status the injector made up.
func (f *injector) Injected() map[int]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.injected)
}

// Seen is how many requests with this method and path arrived while a decision was in force.
func (f *injector) Seen(method, path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[method+" "+path]
}

type injectingTransport struct {
	next     http.RoundTripper
	injector *injector
}

func (t injectingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f := t.injector
	f.mu.Lock()
	answer := pass
	if f.decide != nil {
		f.seen[req.Method+" "+req.URL.Path]++
		if answer = f.decide(req); answer != pass {
			f.injected[answer.code]++
		}
	}
	f.mu.Unlock()
	if answer == pass {
		resp, err := t.next.RoundTrip(req)
		if err != nil && isWrite(req) {
			f.unreachable.Add(1)
		}
		return resp, err
	}
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return statusResponse(req, answer), nil
}

var reasons = map[int]string{
	http.StatusConflict:            "Conflict",
	http.StatusTooManyRequests:     "TooManyRequests",
	http.StatusInternalServerError: "InternalError",
	http.StatusServiceUnavailable:  "ServiceUnavailable",
}

// statusResponse is the API server's own shape of an error: a metav1.Status body, and
// Retry-After when asked, as the API server's priority and fairness sends it.
func statusResponse(req *http.Request, answer fault) *http.Response {
	code := answer.code
	body := fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"injected %d for %s %s","reason":%q,"code":%d}`,
		code, req.Method, req.URL.Path, reasons[code], code)
	header := http.Header{"Content-Type": []string{"application/json"}}
	if answer.retryAfter {
		header.Set("Retry-After", "1")
	}
	return &http.Response{
		StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		Request: req,
	}
}

func isWrite(req *http.Request) bool {
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}
