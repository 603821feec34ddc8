package outcome

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/pkg/sources"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

func TestClassConditions(t *testing.T) {
	gc := &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "istio", Generation: 2}}
	cases := []struct {
		name     string
		defaults sources.ClassDefaults
		want     []string
	}{
		{"no defaults", sources.ClassDefaults{}, []string{"True/Accepted", "True/Resolved", "True/SupportedVersion"}},
		{"an unusable parametersRef", sources.ClassDefaults{Problem: "bad ref"}, []string{"False/InvalidParameters", "False/InvalidParameters", "True/SupportedVersion"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			versions := map[string]string{}
			for _, name := range status.RequiredCRDs {
				versions[name] = "v1.6.3"
			}
			conds := ClassConditions(gc, tc.defaults, versions)
			if len(conds) != len(tc.want) {
				t.Fatalf("%d conditions, want %d", len(conds), len(tc.want))
			}
			for i, c := range conds {
				if got := string(c.Status) + "/" + c.Reason; got != tc.want[i] || c.ObservedGeneration != 2 {
					t.Errorf("%s = %s (generation %d), want %s", c.Type, got, c.ObservedGeneration, tc.want[i])
				}
			}
		})
	}
}
