package render

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

func TestServiceAddress(t *testing.T) {
	cases := []struct {
		name        string
		annotation  *string
		addresses   []gatewayv1.GatewaySpecAddress
		wantAddress string
		wantKept    string
		wantInvalid string
	}{
		{name: "nothing asked for"},
		{name: "spec.addresses", addresses: []gatewayv1.GatewaySpecAddress{{Value: "10.0.0.7"}}, wantAddress: "10.0.0.7"},
		{name: "kept address", annotation: new("172.18.255.200"), wantAddress: "172.18.255.200", wantKept: "172.18.255.200"},
		{name: "kept IPv6 address, normalised", annotation: new("fd00:0:0::1"), wantAddress: "fd00::1", wantKept: "fd00::1"},
		// The user's spec.addresses decide; the recorded address is not consulted at all.
		{name: "spec.addresses win over the kept address", annotation: new("172.18.255.200"),
			addresses: []gatewayv1.GatewaySpecAddress{{Value: "10.0.0.7"}}, wantAddress: "10.0.0.7"},
		{name: "kept address that is not an IP", annotation: new("lb.example.com"), wantInvalid: "lb.example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewayv1.GatewaySpec{Addresses: tc.addresses}}
			if tc.annotation != nil {
				gw.Annotations = map[string]string{v1alpha1.KeptAddressAnnotation: *tc.annotation}
			}
			kept, invalid := KeptAddress(gw)
			if kept != tc.wantKept || invalid != tc.wantInvalid {
				t.Errorf("KeptAddress = (%q, %q), want (%q, %q)", kept, invalid, tc.wantKept, tc.wantInvalid)
			}
			if got := ServiceAddress(gw); got != tc.wantAddress {
				t.Errorf("ServiceAddress = %q, want %q", got, tc.wantAddress)
			}
		})
	}
}
