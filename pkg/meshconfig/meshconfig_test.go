package meshconfig

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name           string
		mesh, values   string
		revision       string
		want           Proxy
		wantErrContain string
	}{
		{"nothing configured: Istio's defaults, the revision's istiod, no image", "", "", "", Proxy{
			TrustDomain: "cluster.local", MeshID: "cluster.local", ClusterID: "Kubernetes", PilotCertProvider: "istiod",
			CAAddress: "istiod.aks-istio-system.svc:15012", ProxyMetadata: map[string]string{},
			ProxyConfig: `{"discoveryAddress":"istiod.aks-istio-system.svc:15012"}`,
		}, ""},
		{"a revision's chart values and mesh config", "trustDomain: corp.example.org\ndefaultConfig:\n  proxyMetadata: {A: \"1\"}\n  image: {imageType: distroless}\n",
			`{"revision":"asm-1-26","global":{"hub":"mcr.microsoft.com/oss/istio","tag":"1.26.3-debug","meshID":"m1","network":"n1","multiCluster":{"clusterName":"c1"},"caAddress":"ca.example:15012","pilotCertProvider":"kubernetes"}}`,
			"asm-1-26", Proxy{
				Image: "mcr.microsoft.com/oss/istio/proxyv2:1.26.3-distroless", TrustDomain: "corp.example.org", MeshID: "m1", ClusterID: "c1", Network: "n1",
				CAAddress: "ca.example:15012", PilotCertProvider: "kubernetes", ProxyMetadata: map[string]string{"A": "1"},
				ProxyConfig: `{"discoveryAddress":"istiod-asm-1-26.aks-istio-system.svc:15012","image":{"imageType":"distroless"},"proxyMetadata":{"A":"1"}}`,
			}, ""},
		{"a numeric tag, a full image reference, the default discoveryAddress left out", "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n",
			`{"global":{"hub":"docker.io/istio","tag":1.26,"proxy":{"image":"registry.example/proxy:7"}}}`, "", Proxy{
				Image: "registry.example/proxy:7", TrustDomain: "cluster.local", MeshID: "cluster.local", ClusterID: "Kubernetes", PilotCertProvider: "istiod",
				CAAddress: "istiod.aks-istio-system.svc:15012", ProxyMetadata: map[string]string{}, ProxyConfig: `{}`,
			}, ""},
		{"malformed values", "", `{"global":`, "", Proxy{}, "values: not valid injector values JSON"},
		{"malformed mesh config", "trustDomain: [a", "", "", Proxy{}, "mesh: not valid mesh config YAML"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.mesh, tc.values, tc.revision, "aks-istio-system")
			if tc.wantErrContain != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrContain) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErrContain)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestConfigMapNamesFollowIstiosRevisionNaming(t *testing.T) {
	for rev, want := range map[string][2]string{"": {"istio", "istio-sidecar-injector"}, "default": {"istio", "istio-sidecar-injector"},
		"asm-1-26": {"istio-asm-1-26", "istio-sidecar-injector-asm-1-26"}} {
		if got := [2]string{MeshConfigMapName(rev), InjectorConfigMapName(rev)}; got != want {
			t.Errorf("revision %q: %v, want %v", rev, got, want)
		}
	}
}
