package customize

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name       string
		data       map[string]string
		violations []string
		warnings   []string
	}{
		{name: "the default class ConfigMap", data: map[string]string{
			"horizontalPodAutoscaler": "spec:\n  minReplicas: 2\n  maxReplicas: 5\n",
			"podDisruptionBudget":     "spec:\n  minAvailable: 1\n",
		}},
		{name: "walkthrough case B", data: map[string]string{
			"horizontalPodAutoscaler": "spec:\n  minReplicas: 2\n  maxReplicas: 4\n",
			"deployment":              "metadata:\n  labels:\n    test.azureservicemesh.io/deployment-config: \"updated-per-gateway\"\n",
		}},
		{name: "every offending path is listed with its key, not only the first", data: map[string]string{
			"deployment": "spec:\n  template:\n    spec:\n      hostNetwork: true\n      volumes: []\n",
			"service":    "spec:\n  ports: []\n",
			"gateway":    "x: 1\n",
		}, violations: []string{
			"data.deployment: spec.template.spec.hostNetwork is not allowed; allowed under spec.template.spec: affinity, containers, nodeName, nodeSelector, tolerations, topologySpreadConstraints",
			"data.deployment: spec.template.spec.volumes is not allowed; allowed under spec.template.spec: affinity, containers, nodeName, nodeSelector, tolerations, topologySpreadConstraints",
			"data.gateway is not a customization key; known keys: deployment, service, horizontalPodAutoscaler, podDisruptionBudget",
			"data.service: spec.ports is not allowed; allowed under spec: externalTrafficPolicy, internalTrafficPolicy, loadBalancerClass, loadBalancerSourceRanges, type",
		}},
		{name: "a fragment that is not YAML of its kind", data: map[string]string{"podDisruptionBudget": "spec: [", "service": "spec:\n  type: 3\n"},
			violations: []string{"data.podDisruptionBudget: not valid YAML", "data.service: spec.type must be"}},
		{name: "replicas beside an HPA in the same ConfigMap", data: map[string]string{
			"horizontalPodAutoscaler": "spec:\n  minReplicas: 2\n  maxReplicas: 4\n",
			"deployment":              "spec:\n  replicas: 3\n",
		}, warnings: []string{"data.deployment: spec.replicas is not applied: a HorizontalPodAutoscaler (data.horizontalPodAutoscaler) sets the replicas between its minReplicas and maxReplicas; set minReplicas instead"}},
		{name: "minReplicas below 2", data: map[string]string{"horizontalPodAutoscaler": "spec:\n  minReplicas: 1\n"},
			violations: []string{"data.horizontalPodAutoscaler: spec.minReplicas 1 is below the minimum of 2"}},
		{name: "minReplicas removed", data: map[string]string{"horizontalPodAutoscaler": "spec:\n  minReplicas: null\n"},
			violations: []string{"data.horizontalPodAutoscaler: spec.minReplicas unset (Kubernetes reads 1) is below the minimum of 2"}},
		{name: "minReplicas above maxReplicas", data: map[string]string{"horizontalPodAutoscaler": "spec:\n  minReplicas: 5\n  maxReplicas: 3\n"},
			violations: []string{"data.horizontalPodAutoscaler: spec.minReplicas 5 is greater than spec.maxReplicas 3"}},
		{name: "maxReplicas below the floor", data: map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 1\n"},
			violations: []string{"data.horizontalPodAutoscaler: spec.maxReplicas 1 is below the minimum of 2 replicas"}},
		{name: "a PDB that leaves no disruption at the HPA minimum", data: map[string]string{
			"horizontalPodAutoscaler": "spec:\n  minReplicas: 3\n",
			"podDisruptionBudget":     "spec:\n  minAvailable: 3\n",
		}, warnings: []string{"data.podDisruptionBudget: spec.minAvailable 3 leaves no allowed disruption at the HPA minimum of 3 replicas"}},
		{name: "a percentage PDB of 100%", data: map[string]string{"podDisruptionBudget": "spec:\n  minAvailable: 100%\n"},
			warnings: []string{"spec.minAvailable 100% leaves no allowed disruption at the HPA minimum of 2 replicas"}},
		{name: "AlwaysAllow", data: map[string]string{"podDisruptionBudget": "spec:\n  unhealthyPodEvictionPolicy: AlwaysAllow\n"},
			warnings: []string{"AlwaysAllow lets drains evict gateway pods that are not ready"}},
		{name: "IfHealthyBudget", data: map[string]string{"podDisruptionBudget": "spec:\n  unhealthyPodEvictionPolicy: IfHealthyBudget\n"},
			warnings: []string{"IfHealthyBudget protects not-ready gateway pods"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Validate(tc.data)
			if len(v.Violations) != len(tc.violations) {
				t.Fatalf("violations %q, want %d like %q", v.Violations, len(tc.violations), tc.violations)
			}
			for i, want := range tc.violations {
				if !strings.HasPrefix(v.Violations[i], want) {
					t.Errorf("violation %q, want it to start with %q", v.Violations[i], want)
				}
			}
			if len(v.Warnings) != len(tc.warnings) {
				t.Fatalf("warnings %q, want %q", v.Warnings, tc.warnings)
			}
			for i, want := range tc.warnings {
				if !strings.Contains(v.Warnings[i], want) {
					t.Errorf("warning %q does not say %q", v.Warnings[i], want)
				}
			}
			if v.Allowed() {
				set, err := Parse("ns/cm", tc.data)
				if err != nil || len(set.Findings) != 0 {
					t.Errorf("admitted, yet the filter would change it: %v %v", err, set.Findings)
				}
			}
		})
	}
}
