package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/render"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways,verbs=patch

// replaceOptedIn reports whether the Gateway lets the operator replace its Service when a
// change cannot be made in place.
func replaceOptedIn(gw *gatewayv1.Gateway) bool {
	return gw.Annotations[v1alpha1.ReplaceOnImmutableChangeAnnotation] == "true"
}

// replaceService replaces, in stages, a Service that a change cannot be made to in place:
//  1. the address its load balancer gave is recorded on the Gateway
//     (KeptAddressAnnotation), so that it survives a restart between the next two stages;
//  2. the old Service is deleted (precondition: its UID, so a replacement already made
//     is never deleted);
//  3. once it is gone, the new Service is applied asking for that address (render reads
//     the annotation; it is set here too, since the cache may not have the Gateway's
//     annotation yet when the deletion's event arrives).
//
// It returns the Service to report, and a message while the old one still terminates
// (then the deletion's event brings the Gateway back for stage 3). Whether the address was
// kept is said by the AddressKept condition.
func (r *GatewayReconciler) replaceService(ctx context.Context, gw *gatewayv1.Gateway, s step, old *corev1.Service, fields []string) (*corev1.Service, string, error) {
	logger := log.FromContext(ctx)
	name := client.ObjectKeyFromObject(old)
	if old.DeletionTimestamp.IsZero() {
		address := loadBalancerIP(old)
		if address != "" && len(render.RequestedAddresses(gw).IPs) == 0 && gw.Annotations[v1alpha1.KeptAddressAnnotation] != address {
			patch := client.MergeFrom(gw.DeepCopy())
			if gw.Annotations == nil {
				gw.Annotations = map[string]string{}
			}
			gw.Annotations[v1alpha1.KeptAddressAnnotation] = address
			if err := r.Client.Patch(ctx, gw, patch); err != nil {
				return old, "", fmt.Errorf("recording address %s on Gateway %s/%s before replacing Service %s: %w", address, gw.Namespace, gw.Name, name, err)
			}
		}
		logger.Info("Replacing a Service a change cannot be made to in place, as the Gateway asks", "object", klogRef(name.Namespace, name.Name),
			"fields", fields, "address", address)
		err := r.Client.Delete(ctx, old, client.Preconditions{UID: new(old.GetUID())})
		switch {
		case err == nil:
			r.Recorder.Eventf(gw, nil, corev1.EventTypeNormal, "ReplacingService", "Replace",
				"Deleted Service %s to change %s, which cannot change in place (annotation %s); a new Service asks for address %s",
				name, strings.Join(fields, ", "), v1alpha1.ReplaceOnImmutableChangeAnnotation, orAny(render.ServiceAddress(gw)))
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			// Already gone, or already replaced by a reconcile that saw more.
		default:
			return old, "", fmt.Errorf("deleting Service %s to replace it: %w", name, err)
		}
	}
	if err := r.APIReader.Get(ctx, name, &corev1.Service{}); err == nil {
		return nil, fmt.Sprintf("Service %s is being replaced to change %s (annotation %s); the new one is created once the old one is gone",
			name, strings.Join(fields, ", "), v1alpha1.ReplaceOnImmutableChangeAnnotation), nil
	} else if !apierrors.IsNotFound(err) {
		return nil, "", fmt.Errorf("reading Service %s during its replacement: %w", name, err)
	}
	svc := s.desired.(*corev1.Service).DeepCopy()
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		svc.Spec.LoadBalancerIP = render.ServiceAddress(gw)
	}
	ac, err := s.kind.applyConfiguration(svc)
	if err != nil {
		return nil, "", fmt.Errorf("converting Service %s: %w", name, err)
	}
	if err := r.Client.Apply(ctx, ac, client.FieldOwner(r.FieldManager), client.ForceOwnership); err != nil {
		return nil, "", fmt.Errorf("creating Service %s anew: %w", name, err)
	}
	created, err := serviceFromResponse(ac)
	if err != nil {
		return nil, "", fmt.Errorf("reading the new Service %s: %w", name, err)
	}
	logger.Info("Created the replacement Service", "object", klogRef(name.Namespace, name.Name), "address", svc.Spec.LoadBalancerIP)
	return created, "", nil
}

// loadBalancerIP is the first IP address a Service's load balancer assigned, or "".
func loadBalancerIP(svc *corev1.Service) string {
	for _, ingress := range svc.Status.LoadBalancer.Ingress {
		if ingress.IP != "" {
			return ingress.IP
		}
	}
	return ""
}

func orAny(address string) string {
	if address == "" {
		return "any (the old one had none to keep)"
	}
	return address
}
