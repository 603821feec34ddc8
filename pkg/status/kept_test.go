package status

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestAddressKept(t *testing.T) {
	const annotation, service = "gateway.istio.io/kept-address", "default/gw-istio"
	ip := func(values ...string) []gatewayv1.GatewayStatusAddress {
		var out []gatewayv1.GatewayStatusAddress
		for _, v := range values {
			out = append(out, gatewayv1.GatewayStatusAddress{Type: new(gatewayv1.IPAddressType), Value: v})
		}
		return out
	}
	cases := []struct {
		name          string
		kept, invalid string
		assigned      []gatewayv1.GatewayStatusAddress
		wantStatus    metav1.ConditionStatus
		wantReason    string
		wantMessage   []string
	}{
		{name: "no recorded address: no condition", assigned: ip("172.18.255.200")},
		{name: "waiting for the load balancer", kept: "172.18.255.200", wantStatus: metav1.ConditionUnknown, wantReason: ReasonPending,
			wantMessage: []string{"asks the load balancer for 172.18.255.200", "remove annotation " + annotation}},
		{name: "kept", kept: "172.18.255.200", assigned: ip("172.18.255.200"), wantStatus: metav1.ConditionTrue, wantReason: ReasonKept,
			wantMessage: []string{"Service default/gw-istio has 172.18.255.200"}},
		{name: "kept among dual-stack addresses", kept: "fd00::1", assigned: ip("172.18.255.200", "fd00::1"), wantStatus: metav1.ConditionTrue, wantReason: ReasonKept},
		{name: "lost", kept: "172.18.255.200", assigned: ip("172.18.255.201"), wantStatus: metav1.ConditionFalse, wantReason: ReasonLost,
			wantMessage: []string{"assigned 172.18.255.201 instead of 172.18.255.200", "clients of 172.18.255.200 must move"}},
		{name: "annotation is no IP", invalid: "lb.example.com", assigned: ip("172.18.255.201"), wantStatus: metav1.ConditionFalse, wantReason: ReasonInvalidAddress,
			wantMessage: []string{`holds "lb.example.com", which is not an IP address`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := AddressKept(annotation, tc.kept, tc.invalid, service, tc.assigned, 7)
			if tc.wantReason == "" {
				if got != nil {
					t.Fatalf("AddressKept = %+v, want no condition", *got)
				}
				return
			}
			if got == nil {
				t.Fatal("AddressKept = nil, want a condition")
			}
			if got.Type != ConditionAddressKept || got.Status != tc.wantStatus || got.Reason != tc.wantReason || got.ObservedGeneration != 7 {
				t.Errorf("AddressKept = %s %s %s gen %d, want %s %s %s gen 7", got.Type, got.Status, got.Reason, got.ObservedGeneration,
					ConditionAddressKept, tc.wantStatus, tc.wantReason)
			}
			for _, part := range tc.wantMessage {
				if !strings.Contains(got.Message, part) {
					t.Errorf("message %q does not say %q", got.Message, part)
				}
			}
		})
	}
}

func TestAnOwnConditionNoLongerReportedIsNotUpToDate(t *testing.T) {
	accepted := Condition("Accepted", true, "Accepted", "", 1)
	kept := Condition(ConditionAddressKept, true, ReasonKept, "", 1)
	istiods := Condition("istio.io/Other", true, "Other", "", 1)
	if !ConditionsUpToDate([]metav1.Condition{accepted, istiods}, []metav1.Condition{accepted}) {
		t.Error("another controller's condition made the status out of date")
	}
	if ConditionsUpToDate([]metav1.Condition{accepted, kept}, []metav1.Condition{accepted}) {
		t.Error("a status that still holds AddressKept, which is no longer reported, counts as up to date")
	}
}
