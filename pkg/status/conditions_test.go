package status

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestMergeConditionsKeepsTheTransitionTimeOfAnUnchangedStatus(t *testing.T) {
	then := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(then.Add(time.Hour))
	existing := []metav1.Condition{
		{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: then, ObservedGeneration: 1},
		{Type: "Programmed", Status: metav1.ConditionFalse, Reason: "AddressNotAssigned", LastTransitionTime: then, ObservedGeneration: 1},
		{Type: "OtherController", Status: metav1.ConditionTrue, LastTransitionTime: then},
	}
	desired := []metav1.Condition{
		Condition("Accepted", true, "Accepted", "ok", 2),
		Condition("Programmed", true, "Programmed", "ok", 2),
	}
	got := MergeConditions(existing, desired, now)
	if !got[0].LastTransitionTime.Equal(&then) {
		t.Errorf("Accepted moved its transition time to %v", got[0].LastTransitionTime)
	}
	if !got[1].LastTransitionTime.Equal(&now) {
		t.Errorf("Programmed changed status but kept %v", got[1].LastTransitionTime)
	}
	if ConditionsUpToDate(existing, got) {
		t.Error("a new generation must be written")
	}
	if !ConditionsUpToDate(append(got, existing[2]), got) {
		t.Error("conditions of other controllers must not force a write")
	}
}

func TestGatewayUpToDate(t *testing.T) {
	now := metav1.Now()
	base := func() *gatewayv1.GatewayStatus {
		return &gatewayv1.GatewayStatus{
			Addresses:  []gatewayv1.GatewayStatusAddress{{Type: new(gatewayv1.IPAddressType), Value: "1.2.3.4"}},
			Conditions: MergeConditions(nil, []metav1.Condition{Condition("Accepted", true, "Accepted", "ok", 1)}, now),
			Listeners: []gatewayv1.ListenerStatus{{
				Name: "http", AttachedRoutes: 1,
				SupportedKinds: []gatewayv1.RouteGroupKind{{Group: new(gatewayv1.Group(gatewayv1.GroupName)), Kind: "HTTPRoute"}},
				Conditions:     MergeConditions(nil, []metav1.Condition{Condition("Accepted", true, "Accepted", "ok", 1)}, now),
			}},
		}
	}
	if !GatewayUpToDate(base(), base()) {
		t.Fatal("identical statuses must be up to date")
	}
	changes := map[string]func(*gatewayv1.GatewayStatus){
		"an address":        func(s *gatewayv1.GatewayStatus) { s.Addresses[0].Value = "5.6.7.8" },
		"an attached route": func(s *gatewayv1.GatewayStatus) { s.Listeners[0].AttachedRoutes = 2 },
		"a listener": func(s *gatewayv1.GatewayStatus) {
			s.Listeners = append(s.Listeners, gatewayv1.ListenerStatus{Name: "https"})
		},
		"a condition message": func(s *gatewayv1.GatewayStatus) { s.Conditions[0].Message = "changed" },
		"a listener condition": func(s *gatewayv1.GatewayStatus) {
			s.Listeners[0].Conditions[0].Status = metav1.ConditionFalse
		},
	}
	for name, change := range changes {
		desired := base()
		change(desired)
		if GatewayUpToDate(base(), desired) {
			t.Errorf("a change of %s must be written", name)
		}
	}
	untyped := base()
	untyped.Addresses[0].Type = nil
	if !GatewayUpToDate(untyped, base()) {
		t.Error("an address without a type is an IPAddress, as the API defaults it")
	}
}

func TestConditionMessagesStayWithinTheAPILimit(t *testing.T) {
	c := Condition("X", false, "R", strings.Repeat("é", MaxConditionMessage), 1)
	if len(c.Message) > MaxConditionMessage || !strings.HasSuffix(c.Message, "[truncated]") {
		t.Fatalf("message of %d bytes", len(c.Message))
	}
	if got := Truncate("short", 10); got != "short" {
		t.Fatalf("Truncate changed a short string to %q", got)
	}
}
