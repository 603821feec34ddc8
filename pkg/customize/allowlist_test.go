package customize

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// nested builds the fragment that sets one dotted path; the proxy container list is
// entered as a one-element list.
func nested(key v1alpha1.DataKey, path string, value any) map[string]any {
	parts := strings.Split(path, ".")
	var build func(i int, prefix string) any
	build = func(i int, prefix string) any {
		if i == len(parts) {
			return value
		}
		p := joinPath(prefix, parts[i])
		child := build(i+1, p)
		if key == v1alpha1.DataKeyDeployment && p == v1alpha1.ContainersPath {
			elem := child.(map[string]any)
			elem["name"] = v1alpha1.ProxyContainerName
			return map[string]any{parts[i]: []any{elem}}
		}
		return map[string]any{parts[i]: child}
	}
	return build(0, "").(map[string]any)
}

func runFilter(key v1alpha1.DataKey, fragment map[string]any) (map[string]any, []Finding) {
	f := &filter{source: "ns/cm", key: key}
	return f.object("", allowTrees[key], fragment), f.findings
}

func TestEveryAllowlistedPathIsKeptWhole(t *testing.T) {
	for key, paths := range v1alpha1.Allowlist {
		for _, path := range paths {
			t.Run(fmt.Sprintf("%s %s", key, path), func(t *testing.T) {
				fragment := nested(key, path, map[string]any{"anything": []any{"below", "it"}})
				want := nested(key, path, map[string]any{"anything": []any{"below", "it"}})
				got, findings := runFilter(key, fragment)
				if len(findings) != 0 {
					t.Fatalf("findings for an allowed path: %v", findings)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("kept %v, want %v", got, want)
				}
			})
		}
	}
}

func TestOffListFieldsAreDroppedAndNamed(t *testing.T) {
	cases := []struct {
		name     string
		key      v1alpha1.DataKey
		fragment string
		dropped  []string
	}{
		{"host network", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"spec":{"hostNetwork":true}}}}`, []string{"spec.template.spec.hostNetwork"}},
		{"pod security context", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"spec":{"securityContext":{"runAsUser":0}}}}}`, []string{"spec.template.spec.securityContext"}},
		{"service account", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"spec":{"serviceAccountName":"admin"}}}}`, []string{"spec.template.spec.serviceAccountName"}},
		{"volumes", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"spec":{"volumes":[{"name":"host","hostPath":{"path":"/"}}]}}}}`, []string{"spec.template.spec.volumes"}},
		{"init containers", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"spec":{"initContainers":[{"name":"x","image":"evil"}]}}}}`, []string{"spec.template.spec.initContainers"}},
		{"proxy image", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"spec":{"containers":[{"name":"istio-proxy","image":"evil"}]}}}}`, []string{"spec.template.spec.containers[name=istio-proxy].image"}},
		{"proxy command and args", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"spec":{"containers":[{"command":["sh"],"args":["-c"]}]}}}}`, []string{"spec.template.spec.containers[name=istio-proxy].args", "spec.template.spec.containers[name=istio-proxy].command"}},
		{"privileged proxy", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"spec":{"containers":[{"name":"istio-proxy","securityContext":{"privileged":true}}]}}}}`, []string{"spec.template.spec.containers[name=istio-proxy].securityContext"}},
		{"extra container", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"evil","resources":{"limits":{"cpu":"1"}}}]}}}}`, []string{"spec.template.spec.containers[name=sidecar]"}},
		{"selector", v1alpha1.DataKeyDeployment, `{"spec":{"selector":{"matchLabels":{"a":"b"}}}}`, []string{"spec.selector"}},
		{"strategy", v1alpha1.DataKeyDeployment, `{"spec":{"strategy":{"type":"Recreate"}}}`, []string{"spec.strategy"}},
		{"name", v1alpha1.DataKeyDeployment, `{"metadata":{"name":"other"}}`, []string{"metadata.name"}},
		{"namespace", v1alpha1.DataKeyService, `{"metadata":{"namespace":"kube-system"}}`, []string{"metadata.namespace"}},
		{"owner references", v1alpha1.DataKeyDeployment, `{"metadata":{"ownerReferences":[]}}`, []string{"metadata.ownerReferences"}},
		{"finalizers", v1alpha1.DataKeyPodDisruptionBudget, `{"metadata":{"finalizers":["x"]}}`, []string{"metadata.finalizers"}},
		{"service ports", v1alpha1.DataKeyService, `{"spec":{"ports":[{"port":22}]}}`, []string{"spec.ports"}},
		{"service selector", v1alpha1.DataKeyService, `{"spec":{"selector":{"app":"db"}}}`, []string{"spec.selector"}},
		{"external IPs", v1alpha1.DataKeyService, `{"spec":{"type":"NodePort","externalIPs":["1.2.3.4"]}}`, []string{"spec.externalIPs"}},
		{"HPA target", v1alpha1.DataKeyHorizontalPodAutoscaler, `{"spec":{"scaleTargetRef":{"name":"other"}}}`, []string{"spec.scaleTargetRef"}},
		{"HPA tolerance", v1alpha1.DataKeyHorizontalPodAutoscaler, `{"spec":{"behavior":{"scaleUp":{"tolerance":"0.1"}}}}`, []string{"spec.behavior.scaleUp.tolerance"}},
		{"PDB maxUnavailable", v1alpha1.DataKeyPodDisruptionBudget, `{"spec":{"maxUnavailable":1}}`, []string{"spec.maxUnavailable"}},
		{"PDB selector", v1alpha1.DataKeyPodDisruptionBudget, `{"spec":{"selector":{}}}`, []string{"spec.selector"}},
		{"status", v1alpha1.DataKeyService, `{"status":{"loadBalancer":{}}}`, []string{"status"}},
		{"patch directive at the top", v1alpha1.DataKeyDeployment, `{"$patch":"replace"}`, []string{"$patch"}},
		{"patch directive inside an allowed map", v1alpha1.DataKeyDeployment, `{"metadata":{"labels":{"$patch":"replace","a":"b"}}}`, []string{"metadata.labels.$patch"}},
		{"element order directive", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"x"}]}}}}`, []string{"spec.template.spec.$setElementOrder/containers"}},
		{"reserved label", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"metadata":{"labels":{"gateway.networking.k8s.io/gateway-name":"other","team":"a"}}}}}`, []string{"spec.template.metadata.labels[gateway.networking.k8s.io/gateway-name]"}},
		{"reserved label removed with null", v1alpha1.DataKeyService, `{"metadata":{"labels":{"gateway.istio.io/managed":null}}}`, []string{"metadata.labels[gateway.istio.io/managed]"}},
		{"spec replaced by null", v1alpha1.DataKeyDeployment, `{"spec":null}`, []string{"spec"}},
		{"containers not a list", v1alpha1.DataKeyDeployment, `{"spec":{"template":{"spec":{"containers":{"name":"istio-proxy"}}}}}`, []string{"spec.template.spec.containers"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fragment, err := parseYAML(tc.fragment)
			if err != nil {
				t.Fatal(err)
			}
			_, findings := runFilter(tc.key, fragment)
			var got []string
			for _, f := range findings {
				got = append(got, f.Path)
			}
			if !reflect.DeepEqual(got, tc.dropped) {
				t.Fatalf("dropped %q, want %q", got, tc.dropped)
			}
		})
	}
}

func TestFilterKeepsTheAllowedRestOfAFragment(t *testing.T) {
	fragment, err := parseYAML(`
metadata:
  labels: {team: a}
  name: other
spec:
  template:
    spec:
      hostNetwork: true
      nodeSelector: {pool: gateways}
      containers:
      - resources: {limits: {cpu: "2"}}
        image: evil
`)
	if err != nil {
		t.Fatal(err)
	}
	got, findings := runFilter(v1alpha1.DataKeyDeployment, fragment)
	want := map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"team": "a"}},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"nodeSelector": map[string]any{"pool": "gateways"},
			"containers": []any{map[string]any{
				"name":      "istio-proxy",
				"resources": map[string]any{"limits": map[string]any{"cpu": "2"}},
			}},
		}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %#v\nwant %#v", got, want)
	}
	if len(findings) != 3 {
		t.Fatalf("want 3 findings, got %v", findings)
	}
}

func TestFindingsTellWhatIsAllowedInstead(t *testing.T) {
	fragment, _ := parseYAML(`{"spec":{"template":{"spec":{"hostNetwork":true}}}}`)
	_, findings := runFilter(v1alpha1.DataKeyDeployment, fragment)
	want := "ConfigMap ns/cm data.deployment: spec.template.spec.hostNetwork is not allowed; allowed under spec.template.spec: " +
		"affinity, containers, nodeName, nodeSelector, tolerations, topologySpreadConstraints"
	if len(findings) != 1 || findings[0].Describe() != want {
		t.Fatalf("got %v\nwant %s", findings, want)
	}
}
