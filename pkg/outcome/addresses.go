package outcome

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/pkg/render"
)

// ServiceAddresses are the Gateway's addresses: the load balancer's, else the cluster IP
// of a ClusterIP Service.
func ServiceAddresses(svc *corev1.Service) []gatewayv1.GatewayStatusAddress {
	if svc == nil {
		return nil
	}
	var out []gatewayv1.GatewayStatusAddress
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		switch {
		case ing.IP != "":
			out = append(out, gatewayv1.GatewayStatusAddress{Type: new(gatewayv1.IPAddressType), Value: ing.IP})
		case ing.Hostname != "":
			out = append(out, gatewayv1.GatewayStatusAddress{Type: new(gatewayv1.HostnameAddressType), Value: ing.Hostname})
		}
	}
	if len(out) == 0 && svc.Spec.Type == corev1.ServiceTypeClusterIP {
		for _, ip := range svc.Spec.ClusterIPs {
			if ip != "" && ip != corev1.ClusterIPNone {
				out = append(out, gatewayv1.GatewayStatusAddress{Type: new(gatewayv1.IPAddressType), Value: ip})
			}
		}
	}
	return out
}

// unusableAddressMessage says which of the Gateway's requested addresses cannot be used,
// or "": a LoadBalancer Service requests one address, so any further one is unusable, and
// a load balancer that assigned other addresses than the one requested could not use it.
func unusableAddressMessage(gw *gatewayv1.Gateway, assigned []gatewayv1.GatewayStatusAddress) string {
	requested := render.RequestedAddresses(gw).IPs
	if len(requested) == 0 {
		return ""
	}
	if len(requested) > 1 {
		return fmt.Sprintf("spec.addresses %s cannot be used: a LoadBalancer Service requests one address, and %s is requested; keep one address",
			strings.Join(requested[1:], ", "), requested[0])
	}
	if len(assigned) == 0 {
		return ""
	}
	var values []string
	for _, a := range assigned {
		if a.Value == requested[0] {
			return ""
		}
		values = append(values, a.Value)
	}
	return fmt.Sprintf("spec.addresses %s cannot be used: the load balancer assigned %s instead; request an address it can hand out, or remove spec.addresses",
		requested[0], strings.Join(values, ", "))
}

// noAddressMessage says why the Service has no address yet.
func noAddressMessage(gw *gatewayv1.Gateway, svc *corev1.Service) string {
	if requested := render.RequestedAddresses(gw).IPs; len(requested) > 0 && svc != nil {
		return fmt.Sprintf("Service %s/%s requests address %s and the load balancer has not assigned it; it stays pending while the load balancer cannot use that address",
			gw.Namespace, render.Name(gw.Name), requested[0])
	}
	name := gw.Namespace + "/" + render.Name(gw.Name)
	if svc == nil {
		return fmt.Sprintf("Service %s does not exist yet", name)
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		return fmt.Sprintf("Service %s of type LoadBalancer has no ingress address yet; waiting for the load balancer", name)
	}
	return fmt.Sprintf("Service %s of type %s has no address", name, svc.Spec.Type)
}
