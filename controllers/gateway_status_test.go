package controllers

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/pkg/customize"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

func findCondition(t *testing.T, st *gatewayv1.GatewayStatus, conditionType string) metav1.Condition {
	t.Helper()
	for _, c := range st.Conditions {
		if c.Type == conditionType {
			if c.ObservedGeneration != 4 {
				t.Errorf("%s observedGeneration %d, want 4", c.Type, c.ObservedGeneration)
			}
			return c
		}
	}
	t.Fatalf("no %s condition", conditionType)
	return metav1.Condition{}
}

func TestGatewayStatus(t *testing.T) {
	gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns", Generation: 4}}
	lb := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	lbWithIP := lb.DeepCopy()
	lbWithIP.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "20.0.0.1"}}
	lbWithHostname := lb.DeepCopy()
	lbWithHostname.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "gw.example.com"}}
	clusterIP := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.0.0.9"}}}

	cases := []struct {
		name                             string
		out                              outcome
		accepted, programmed, customized string
		addresses                        []string
		messageHas                       string
	}{
		{"resources applied and an address assigned", outcome{service: lbWithIP},
			"True/Accepted", "True/Programmed", "True/Applied", []string{"20.0.0.1"}, ""},
		{"a hostname address", outcome{service: lbWithHostname},
			"True/Accepted", "True/Programmed", "True/Applied", []string{"gw.example.com"}, ""},
		{"a ClusterIP Service's address", outcome{service: clusterIP},
			"True/Accepted", "True/Programmed", "True/Applied", []string{"10.0.0.9"}, ""},
		{"waiting for the load balancer", outcome{service: lb},
			"True/Accepted", "False/AddressNotAssigned", "True/Applied", nil, "has no ingress address yet"},
		{"no Service yet", outcome{},
			"True/Accepted", "False/AddressNotAssigned", "True/Applied", nil, "does not exist yet"},
		{"invalid parameters keep the old address", outcome{invalid: "ConfigMap ns/x does not exist", service: lbWithIP},
			"False/InvalidParameters", "False/Invalid", "False/InvalidParameters", []string{"20.0.0.1"}, "ConfigMap ns/x does not exist"},
		{"a name taken by someone else", outcome{conflict: "Service ns/gw-istio already exist"},
			"True/Accepted", "False/Invalid", "True/Applied", nil, "already exist"},
		{"an apply the API server refused", outcome{applyErr: "applying Service: invalid", service: lbWithIP},
			"True/Accepted", "False/Invalid", "True/Applied", []string{"20.0.0.1"}, "refused"},
		{"writes failing with transient errors keep the old address", outcome{retrying: "applying Deployment ns/gw-istio: etcdserver: request timed out", service: lbWithIP},
			"True/Accepted", "False/Pending", "True/Applied", []string{"20.0.0.1"}, "Retrying with backoff after API errors: applying Deployment"},
		{"dropped fields", outcome{service: lbWithIP, findings: []customize.Finding{{Source: "ns/cm", Key: "deployment", Path: "spec.x", Problem: "is not allowed"}}},
			"True/Accepted", "True/Programmed", "False/FieldsNotAllowed", []string{"20.0.0.1"}, ""},
		{"an adjusted value", outcome{service: lbWithIP, findings: []customize.Finding{{Key: "horizontalPodAutoscaler", Path: "spec.minReplicas", Problem: "raised"}}},
			"True/Accepted", "True/Programmed", "False/ValuesAdjusted", []string{"20.0.0.1"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := gatewayStatus(gw, &tc.out, nil, "asm-1-26")
			check := func(conditionType, want string) metav1.Condition {
				c := findCondition(t, st, conditionType)
				if got := string(c.Status) + "/" + c.Reason; got != want {
					t.Errorf("%s = %s, want %s", conditionType, got, want)
				}
				return c
			}
			accepted := check("Accepted", tc.accepted)
			programmed := check("Programmed", tc.programmed)
			check(status.ConditionCustomizationsApplied, tc.customized)
			var got []string
			for _, a := range st.Addresses {
				got = append(got, a.Value)
			}
			if strings.Join(got, ",") != strings.Join(tc.addresses, ",") {
				t.Errorf("addresses %v, want %v", got, tc.addresses)
			}
			if tc.messageHas != "" && !strings.Contains(accepted.Message+programmed.Message, tc.messageHas) {
				t.Errorf("messages %q / %q do not say %q", accepted.Message, programmed.Message, tc.messageHas)
			}
		})
	}
}

func TestAcceptedSaysWhichListenersAreInvalid(t *testing.T) {
	gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns", Generation: 4}}
	listeners := []status.ListenerResult{{Valid: true, Status: gatewayv1.ListenerStatus{Name: "http"}}, {Valid: false, Status: gatewayv1.ListenerStatus{Name: "sctp"}}}
	c := findCondition(t, gatewayStatus(gw, &outcome{}, listeners, ""), "Accepted")
	if c.Status != metav1.ConditionTrue || c.Reason != "ListenersNotValid" || c.Message != "Listeners not valid: sctp" {
		t.Fatalf("Accepted %s/%s %q", c.Status, c.Reason, c.Message)
	}
}

func TestClassConditions(t *testing.T) {
	gc := &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "istio", Generation: 2}}
	cases := []struct {
		name     string
		defaults classDefaults
		want     []string
	}{
		{"no defaults", classDefaults{}, []string{"True/Accepted", "True/Resolved"}},
		{"an unusable parametersRef", classDefaults{Problem: "bad ref"}, []string{"False/InvalidParameters", "False/InvalidParameters"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conds := classConditions(gc, tc.defaults)
			for i, c := range conds {
				if got := string(c.Status) + "/" + c.Reason; got != tc.want[i] || c.ObservedGeneration != 2 {
					t.Errorf("%s = %s (generation %d), want %s", c.Type, got, c.ObservedGeneration, tc.want[i])
				}
			}
		})
	}
}
