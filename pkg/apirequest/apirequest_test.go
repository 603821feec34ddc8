package apirequest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		method, url, verb, resource, namespace string
	}{
		{"PATCH", "/apis/apps/v1/namespaces/ns/deployments/gw-istio?fieldManager=x", "PATCH", "deployments", "ns"},
		{"PATCH", "/apis/gateway.networking.k8s.io/v1/namespaces/ns/gateways/gw/status", "PATCH", "gateways/status", "ns"},
		{"GET", "/api/v1/namespaces/ns/configmaps/opts", "GET", "configmaps", "ns"},
		{"GET", "/api/v1/configmaps?watch=true&labelSelector=a", "WATCH", "configmaps", ""},
		{"GET", "/api/v1/namespaces/ns", "GET", "namespaces", ""},
		{"POST", "/apis/events.k8s.io/v1/namespaces/ns/events", "POST", "events", "ns"},
		{"GET", "/apis/gateway.networking.k8s.io/v1/gatewayclasses", "GET", "gatewayclasses", ""},
		{"GET", "/version", "GET", "/version", ""},
	}
	for _, tc := range cases {
		req := httptest.NewRequest(tc.method, tc.url, nil)
		verb, resource := Classify(req)
		if verb != tc.verb || resource != tc.resource || Namespace(req.URL.Path) != tc.namespace {
			t.Errorf("%s %s = %s %s in %q, want %s %s in %q", tc.method, tc.url, verb, resource, Namespace(req.URL.Path), tc.verb, tc.resource, tc.namespace)
		}
	}
	if !IsWrite(http.MethodPatch) || IsWrite("WATCH") {
		t.Error("IsWrite")
	}
}
