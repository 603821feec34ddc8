package outcome

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

	withAddresses := func(values ...string) []gatewayv1.GatewaySpecAddress {
		var out []gatewayv1.GatewaySpecAddress
		for _, v := range values {
			typ, value, typed := strings.Cut(v, "=")
			if !typed {
				typ, value = string(gatewayv1.IPAddressType), v
			}
			out = append(out, gatewayv1.GatewaySpecAddress{Type: new(gatewayv1.AddressType(typ)), Value: value})
		}
		return out
	}
	cases := []struct {
		name                             string
		out                              Result
		addresses                        []gatewayv1.GatewaySpecAddress
		accepted, programmed, customized string
		statusAddresses                  []string
		messageHas                       string
	}{
		{"resources applied and an address assigned", Result{Service: lbWithIP}, nil,
			"True/Accepted", "True/Programmed", "True/Applied", []string{"20.0.0.1"}, ""},
		{"a hostname address", Result{Service: lbWithHostname}, nil,
			"True/Accepted", "True/Programmed", "True/Applied", []string{"gw.example.com"}, ""},
		{"a change of a field that cannot change in place", Result{Service: lbWithIP, State: Immutable, Message: "Service ns/gw-istio: spec.loadBalancerClass cannot change on the existing object"}, nil,
			"True/Accepted", "False/ImmutableField", "True/Applied", []string{"20.0.0.1"}, "spec.loadBalancerClass cannot change"},
		{"a ClusterIP Service's address", Result{Service: clusterIP}, nil,
			"True/Accepted", "True/Programmed", "True/Applied", []string{"10.0.0.9"}, ""},
		{"waiting for the load balancer", Result{Service: lb}, nil,
			"True/Accepted", "False/AddressNotAssigned", "True/Applied", nil, "has no ingress address yet"},
		{"no Service yet", Result{}, nil,
			"True/Accepted", "False/AddressNotAssigned", "True/Applied", nil, "does not exist yet"},
		{"invalid parameters keep the old address", Result{State: InvalidParameters, Message: "ConfigMap ns/x does not exist", Service: lbWithIP}, nil,
			"False/InvalidParameters", "False/Invalid", "False/InvalidParameters", []string{"20.0.0.1"}, "ConfigMap ns/x does not exist"},
		{"a name taken by someone else", Result{State: NameTaken, Message: "Service ns/gw-istio already exist"}, nil,
			"True/Accepted", "False/Invalid", "True/Applied", nil, "already exist"},
		{"an apply the API server refused", Result{State: Refused, Message: "applying Service: invalid", Service: lbWithIP}, nil,
			"True/Accepted", "False/Invalid", "True/Applied", []string{"20.0.0.1"}, "refused"},
		{"writes failing with transient errors keep the old address", Result{State: Retrying, Message: "applying Deployment ns/gw-istio: etcdserver: request timed out", Service: lbWithIP}, nil,
			"True/Accepted", "False/Pending", "True/Applied", []string{"20.0.0.1"}, "Retrying with backoff after API errors: applying Deployment"},
		{"dropped fields", Result{Service: lbWithIP, Findings: []customize.Finding{{Source: "ns/cm", Key: "deployment", Path: "spec.x", Problem: "is not allowed"}}}, nil,
			"True/Accepted", "True/Programmed", "False/FieldsNotAllowed", []string{"20.0.0.1"}, ""},
		{"an address of a type the operator cannot request is not accepted, and nothing is applied", Result{State: UnsupportedAddress, Message: "spec.addresses \"gw.example.com\" of type Hostname"},
			withAddresses("Hostname=gw.example.com"), "False/UnsupportedAddress", "False/Invalid", "True/Applied", nil, "Hostname"},
		{"a second requested address cannot be used", Result{Service: lbWithIP}, withAddresses("20.0.0.1", "20.0.0.2"),
			"True/Accepted", "False/AddressNotUsable", "True/Applied", []string{"20.0.0.1"}, "20.0.0.2 cannot be used"},
		{"a load balancer that assigned another address could not use the requested one", Result{Service: lbWithIP}, withAddresses("20.0.0.7"),
			"True/Accepted", "False/AddressNotUsable", "True/Applied", []string{"20.0.0.1"}, "assigned 20.0.0.1 instead"},
		{"a requested address the load balancer has not assigned yet", Result{Service: lb}, withAddresses("20.0.0.7"),
			"True/Accepted", "False/AddressNotAssigned", "True/Applied", nil, "requests address 20.0.0.7"},
		{"the requested address assigned", Result{Service: lbWithIP}, withAddresses("20.0.0.1"),
			"True/Accepted", "True/Programmed", "True/Applied", []string{"20.0.0.1"}, ""},
		{"an IPAddress without a value asks for any address", Result{Service: lbWithIP}, withAddresses(""),
			"True/Accepted", "True/Programmed", "True/Applied", []string{"20.0.0.1"}, ""},
		{"an adjusted value", Result{Service: lbWithIP, Findings: []customize.Finding{{Key: "horizontalPodAutoscaler", Path: "spec.minReplicas", Problem: "raised", Adjusted: true}}}, nil,
			"True/Accepted", "True/Programmed", "False/ValuesAdjusted", []string{"20.0.0.1"}, ""},
		{"a value the class policy dropped", Result{Service: lbWithIP, Findings: []customize.Finding{
			{Source: "ns/cm", Key: "deployment", Path: "spec.template.spec.nodeSelector", Problem: "is set only by the class level", Rule: "enforced"},
			{Key: "horizontalPodAutoscaler", Path: "spec.minReplicas", Problem: "raised", Adjusted: true}}}, nil,
			"True/Accepted", "True/Programmed", "False/PolicyEnforced", []string{"20.0.0.1"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw := gw.DeepCopy()
			gw.Spec.Addresses = tc.addresses
			st := GatewayStatus(gw, &tc.out, status.ListenerInputs{}, "asm-1-26")
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
			if strings.Join(got, ",") != strings.Join(tc.statusAddresses, ",") {
				t.Errorf("addresses %v, want %v", got, tc.statusAddresses)
			}
			if tc.messageHas != "" && !strings.Contains(accepted.Message+programmed.Message, tc.messageHas) {
				t.Errorf("messages %q / %q do not say %q", accepted.Message, programmed.Message, tc.messageHas)
			}
		})
	}
}

func TestAcceptedSaysWhichListenersAreInvalid(t *testing.T) {
	http := gatewayv1.Listener{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType}
	invalid := gatewayv1.Listener{Name: "invalid", Port: 1111, Protocol: "INVALID"}
	cases := []struct {
		name      string
		listeners []gatewayv1.Listener
		want      string
		message   string
	}{
		{"some listeners invalid: accepted, naming them", []gatewayv1.Listener{http, invalid}, "True/ListenersNotValid", "Listeners not valid: invalid; the others are served"},
		{"no listener valid: not accepted", []gatewayv1.Listener{invalid}, "False/ListenersNotValid", "No listener is accepted (see their conditions): invalid"},
		{"every listener valid", []gatewayv1.Listener{http}, "True/Accepted", "Resources are generated by revision default"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns", Generation: 4}, Spec: gatewayv1.GatewaySpec{Listeners: tc.listeners}}
			st := GatewayStatus(gw, &Result{}, status.ListenerInputs{}, "")
			c := findCondition(t, st, "Accepted")
			if got := string(c.Status) + "/" + c.Reason; got != tc.want || c.Message != tc.message {
				t.Errorf("Accepted %s %q, want %s %q", got, c.Message, tc.want, tc.message)
			}
			if len(st.Listeners) != len(tc.listeners) {
				t.Errorf("%d listener entries, want %d", len(st.Listeners), len(tc.listeners))
			}
		})
	}
}
