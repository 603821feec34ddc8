// Package apirequest names a Kubernetes API request by verb and resource, for counting the
// requests a client makes: the operator's own metrics, the tests and the benchmark use it.
package apirequest

import (
	"net/http"
	"strings"
)

// Classify returns the request's verb (WATCH for watches, else the HTTP method) and its
// resource with any subresource ("deployments", "gateways/status").
func Classify(req *http.Request) (verb, resource string) {
	verb = req.Method
	if req.Method == http.MethodGet && req.URL.Query().Get("watch") == "true" {
		verb = "WATCH"
	}
	return verb, resourceOf(req.URL.Path)
}

// IsWrite reports whether a verb changes state.
func IsWrite(verb string) bool {
	switch verb {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// resourceOf extracts the resource (and subresource) from an API path:
// /api/v1/namespaces/ns/services/name/status -> services/status.
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return path
	}
	if len(parts) > 2 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	switch len(parts) {
	case 0:
		return path
	case 1, 2:
		return parts[0]
	default:
		return parts[0] + "/" + parts[2]
	}
}

// Namespace returns the namespace of a namespaced request path, or "".
func Namespace(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i+2 < len(parts); i++ {
		if parts[i] == "namespaces" {
			return parts[i+1]
		}
	}
	return ""
}
