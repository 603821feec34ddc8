package render

import (
	"fmt"
	"net/netip"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// AddressRequest is what a Gateway's spec.addresses ask of its LoadBalancer Service.
type AddressRequest struct {
	// IPs are the requested IP addresses in order; the Service can request the first.
	IPs []string
	// Unsupported names the addresses the operator cannot request at all (a type other than
	// IPAddress, or a value that is not an IP address), for Accepted=False/UnsupportedAddress.
	Unsupported []string
}

// RequestedAddresses reads a Gateway's spec.addresses. An IPAddress entry without a value
// asks for any address, which is what the load balancer hands out anyway.
func RequestedAddresses(gw *gatewayv1.Gateway) AddressRequest {
	var out AddressRequest
	for _, a := range gw.Spec.Addresses {
		typ := gatewayv1.IPAddressType
		if a.Type != nil {
			typ = *a.Type
		}
		switch {
		case typ != gatewayv1.IPAddressType:
			out.Unsupported = append(out.Unsupported, fmt.Sprintf("%q of type %s (only IPAddress is supported)", a.Value, typ))
		case a.Value == "":
		default:
			ip, err := netip.ParseAddr(a.Value)
			if err != nil {
				out.Unsupported = append(out.Unsupported, fmt.Sprintf("%q (not an IP address)", a.Value))
				continue
			}
			out.IPs = append(out.IPs, ip.String())
		}
	}
	return out
}

// UnsupportedMessage explains the unsupported addresses, or is "" when there are none.
func (r AddressRequest) UnsupportedMessage() string {
	if len(r.Unsupported) == 0 {
		return ""
	}
	return "spec.addresses " + strings.Join(r.Unsupported, ", ") + " cannot be requested from a LoadBalancer Service; remove them"
}

// KeptAddress reads the address recorded on a Gateway before its Service was replaced
// (v1alpha1.KeptAddressAnnotation), which the Service asks for while spec.addresses asks
// for none. It is "" when there is none, or when spec.addresses decides; invalid holds an
// annotation value that is not an IP address, which is ignored.
func KeptAddress(gw *gatewayv1.Gateway) (address, invalid string) {
	value, ok := gw.Annotations[v1alpha1.KeptAddressAnnotation]
	if !ok || len(RequestedAddresses(gw).IPs) > 0 {
		return "", ""
	}
	ip, err := netip.ParseAddr(value)
	if err != nil {
		return "", value
	}
	return ip.String(), ""
}

// ServiceAddress is the one address the Gateway's LoadBalancer Service asks for: the first
// of spec.addresses, else the kept address, else "" (any).
func ServiceAddress(gw *gatewayv1.Gateway) string {
	if ips := RequestedAddresses(gw).IPs; len(ips) > 0 {
		return ips[0]
	}
	address, _ := KeptAddress(gw)
	return address
}
