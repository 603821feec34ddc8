package customize

import (
	"strings"
	"testing"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name         string
		data         map[string]string
		wantKeys     []v1alpha1.DataKey
		wantFindings []string
		wantErr      []string
	}{
		{
			name:     "the default class ConfigMap",
			data:     map[string]string{"horizontalPodAutoscaler": "spec:\n  minReplicas: 2\n  maxReplicas: 5\n", "podDisruptionBudget": "spec:\n  minAvailable: 1\n"},
			wantKeys: []v1alpha1.DataKey{v1alpha1.DataKeyHorizontalPodAutoscaler, v1alpha1.DataKeyPodDisruptionBudget},
		},
		{
			name:     "an empty fragment still asks for its resource",
			data:     map[string]string{"podDisruptionBudget": ""},
			wantKeys: []v1alpha1.DataKey{v1alpha1.DataKeyPodDisruptionBudget},
		},
		{
			name:         "an unknown key is reported and the rest applies",
			data:         map[string]string{"serviceAccount": "metadata: {}", "service": "spec:\n  type: ClusterIP\n"},
			wantKeys:     []v1alpha1.DataKey{v1alpha1.DataKeyService},
			wantFindings: []string{`data.serviceAccount is not a customization key; known keys: deployment, service, horizontalPodAutoscaler, podDisruptionBudget`},
		},
		{
			name:    "YAML that does not parse",
			data:    map[string]string{"deployment": "metadata: [unclosed"},
			wantErr: []string{"data.deployment: not valid YAML"},
		},
		{
			name:    "a fragment that is not a mapping",
			data:    map[string]string{"service": "- a\n- b\n"},
			wantErr: []string{"data.service: must be a YAML mapping, not a list"},
		},
		{
			name:    "duplicate keys",
			data:    map[string]string{"service": "spec:\n  type: ClusterIP\n  type: NodePort\n"},
			wantErr: []string{"data.service: not valid YAML"},
		},
		{
			name:    "values of the wrong type, reported for every key",
			data:    map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: five\n", "podDisruptionBudget": "spec:\n  unhealthyPodEvictionPolicy: [1]\n"},
			wantErr: []string{"data.horizontalPodAutoscaler: spec.maxReplicas must be int32, not a string", "data.podDisruptionBudget: spec.unhealthyPodEvictionPolicy must be"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Parse("default/gw-options", tc.data)
			if len(tc.wantErr) > 0 {
				if err == nil || !IsInvalid(err) {
					t.Fatalf("want an InvalidError, got %v", err)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if !strings.HasPrefix(err.Error(), "invalid customization in ConfigMap default/gw-options: ") {
					t.Errorf("error %q does not name the ConfigMap", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.wantKeys {
				if _, ok := set.Fragments[k]; !ok {
					t.Errorf("missing fragment %s", k)
				}
			}
			if len(set.Fragments) != len(tc.wantKeys) {
				t.Errorf("fragments %v, want keys %v", set.Fragments, tc.wantKeys)
			}
			var got []string
			for _, f := range set.Findings {
				got = append(got, f.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.wantFindings, "\n") {
				t.Errorf("findings %q, want %q", got, tc.wantFindings)
			}
		})
	}
}
