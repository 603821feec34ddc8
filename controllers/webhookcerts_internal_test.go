package controllers

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

// TestScopedConfigNamesTheTwoObjects guards the RBAC promise: cert-controller's lists and
// watches of Secrets and webhook configurations reach the API server naming the one object
// each, so that rules with resourceNames suffice; other requests pass unchanged.
func TestScopedConfigNamesTheTwoObjects(t *testing.T) {
	var seen []string
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		w.WriteHeader(http.StatusOK)
	}))
	defer server.Close()
	cfg := scopedConfig(&rest.Config{Host: server.URL}, "aks-istio-system", "the-secret", "the-webhooks")
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/api/v1/namespaces/aks-istio-system/secrets?limit=500", "GET /api/v1/namespaces/aks-istio-system/secrets?fieldSelector=metadata.name%3Dthe-secret&limit=500"},
		{"GET", "/api/v1/namespaces/aks-istio-system/secrets?watch=true&fieldSelector=type%3Dx", "GET /api/v1/namespaces/aks-istio-system/secrets?fieldSelector=type%3Dx%2Cmetadata.name%3Dthe-secret&watch=true"},
		{"GET", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations?watch=true", "GET /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations?fieldSelector=metadata.name%3Dthe-webhooks&watch=true"},
		// An API server behind a proxy's path prefix (Rancher's /k8s/clusters/<id>, say).
		{"GET", "/k8s/clusters/c-1/api/v1/namespaces/aks-istio-system/secrets", "GET /k8s/clusters/c-1/api/v1/namespaces/aks-istio-system/secrets?fieldSelector=metadata.name%3Dthe-secret"},
		// A Get by name, another namespace's Secrets, and writes are not touched.
		{"GET", "/api/v1/namespaces/aks-istio-system/secrets/the-secret", "GET /api/v1/namespaces/aks-istio-system/secrets/the-secret?"},
		{"GET", "/api/v1/namespaces/tenant/secrets", "GET /api/v1/namespaces/tenant/secrets?"},
		{"POST", "/api/v1/namespaces/aks-istio-system/secrets", "POST /api/v1/namespaces/aks-istio-system/secrets?"},
	} {
		seen = nil
		req, err := http.NewRequest(tc.method, server.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(seen) != 1 || seen[0] != tc.want {
			t.Errorf("%s %s reached the server as %q, want %q", tc.method, tc.path, seen, tc.want)
		}
	}
}

func TestWebhookCertOptionsRefuseCertificatesThatCannotStayValid(t *testing.T) {
	valid := WebhookCertOptions{
		Namespace: "aks-istio-system", SecretName: DefaultWebhookSecret, WebhookConfiguration: DefaultWebhookConfiguration,
		DNSNames: ServiceDNSNames(DefaultWebhookService, "aks-istio-system"),
		Validity: DefaultWebhookCertValidity, RenewBefore: DefaultWebhookCertRenewal, CheckInterval: DefaultWebhookCertCheck,
	}
	if err := valid.Validate(); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*WebhookCertOptions)
		want   string
	}{
		"no Secret name":         {func(o *WebhookCertOptions) { o.SecretName = "" }, "a Secret name"},
		"no DNS name":            {func(o *WebhookCertOptions) { o.DNSNames = nil }, "at least one DNS name"},
		"renewed at every check": {func(o *WebhookCertOptions) { o.RenewBefore = o.Validity }, "renewed at every check"},
		"checked too rarely":     {func(o *WebhookCertOptions) { o.CheckInterval = o.RenewBefore }, "could expire between checks"},
		"a zero validity":        {func(o *WebhookCertOptions) { o.Validity = 0 }, "must be positive"},
	} {
		o := valid
		tc.change(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error saying %q", name, err, tc.want)
		}
	}
}
