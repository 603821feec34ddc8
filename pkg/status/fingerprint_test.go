package status

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestFingerprintTellsAnotherWritersChange(t *testing.T) {
	base := func() *gatewayv1.GatewayStatus {
		return &gatewayv1.GatewayStatus{
			Addresses: []gatewayv1.GatewayStatusAddress{{Value: "203.0.113.10"}},
			Conditions: []metav1.Condition{
				{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: "Handled by istio-gateway-operator", ObservedGeneration: 1},
				{Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed", Message: "Resource programmed", ObservedGeneration: 1},
				{Type: "Other", Status: metav1.ConditionTrue, Reason: "Other"},
			},
			Listeners: []gatewayv1.ListenerStatus{{Name: "http", AttachedRoutes: 1, Conditions: []metav1.Condition{
				{Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed"},
				{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted"},
			}}},
		}
	}
	types := []string{"Accepted", "Programmed"}
	sum := func(s *gatewayv1.GatewayStatus) uint64 {
		return Fingerprint(s.Conditions, types, s.Addresses, s.Listeners)
	}
	want := sum(base())

	same := map[string]func(*gatewayv1.GatewayStatus){
		"a lastTransitionTime":      func(s *gatewayv1.GatewayStatus) { s.Conditions[0].LastTransitionTime = metav1.NewTime(time.Now()) },
		"a condition of other type": func(s *gatewayv1.GatewayStatus) { s.Conditions[2].Message = "changed" },
		"the order of conditions":   func(s *gatewayv1.GatewayStatus) { s.Conditions[0], s.Conditions[1] = s.Conditions[1], s.Conditions[0] },
		"an address type left to its default": func(s *gatewayv1.GatewayStatus) {
			s.Addresses[0].Type = new(gatewayv1.IPAddressType)
		},
	}
	for name, change := range same {
		s := base()
		change(s)
		if got := sum(s); got != want {
			t.Errorf("%s changed the fingerprint", name)
		}
	}
	different := map[string]func(*gatewayv1.GatewayStatus){
		"a message (istiod's Accepted)": func(s *gatewayv1.GatewayStatus) { s.Conditions[0].Message = "Handled by Istio controller" },
		"a status":                      func(s *gatewayv1.GatewayStatus) { s.Conditions[1].Status = metav1.ConditionFalse },
		"an observedGeneration":         func(s *gatewayv1.GatewayStatus) { s.Conditions[1].ObservedGeneration = 2 },
		"a condition removed":           func(s *gatewayv1.GatewayStatus) { s.Conditions = s.Conditions[1:] },
		"an address":                    func(s *gatewayv1.GatewayStatus) { s.Addresses[0].Value = "203.0.113.11" },
		"a listener's condition":        func(s *gatewayv1.GatewayStatus) { s.Listeners[0].Conditions[0].Reason = "Pending" },
		"attached routes":               func(s *gatewayv1.GatewayStatus) { s.Listeners[0].AttachedRoutes = 2 },
		"a listener removed":            func(s *gatewayv1.GatewayStatus) { s.Listeners = nil },
	}
	for name, change := range different {
		s := base()
		change(s)
		if got := sum(s); got == want {
			t.Errorf("%s left the fingerprint unchanged", name)
		}
	}
}
