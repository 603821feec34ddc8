package controllers

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// gatewaysOfClass maps the served GatewayClass to all of its Gateways: its parametersRef
// or its existence changes every Gateway's inputs.
func (r *GatewayReconciler) gatewaysOfClass(ctx context.Context, o client.Object) []reconcile.Request {
	if o.GetName() != r.Options.GatewayClassName {
		return nil
	}
	return r.listGateways(ctx, client.MatchingFields{GatewayClassIndex: r.Options.GatewayClassName})
}

// gatewaysForConfigMap maps a ConfigMap to the Gateways it customizes: every Gateway of the
// class for a class-level ConfigMap (labelled, or named by the class's parametersRef), and
// the Gateways whose parametersRef names it.
func (r *GatewayReconciler) gatewaysForConfigMap(ctx context.Context, o client.Object) []reconcile.Request {
	if r.isClassConfigMap(ctx, o) {
		return r.listGateways(ctx, client.MatchingFields{GatewayClassIndex: r.Options.GatewayClassName})
	}
	return r.listGateways(ctx, client.MatchingFields{GatewayParametersIndex: o.GetNamespace() + "/" + o.GetName()})
}

func (r *GatewayReconciler) isClassConfigMap(ctx context.Context, o client.Object) bool {
	if o.GetNamespace() == r.Options.SystemNamespace && o.GetLabels()[v1alpha1.DefaultsForClassLabel] == r.Options.GatewayClassName {
		return true
	}
	gc := &gatewayv1.GatewayClass{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: r.Options.GatewayClassName}, gc); err != nil {
		return false
	}
	ref := gc.Spec.ParametersRef
	return ref != nil && ref.Group == "" && ref.Kind == "ConfigMap" && ref.Name == o.GetName() &&
		ref.Namespace != nil && string(*ref.Namespace) == o.GetNamespace()
}

// gatewaysOfRoute maps an HTTPRoute to the Gateways in its parentRefs, whose listener
// status counts attached routes.
func gatewaysOfRoute(_ context.Context, o client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, key := range httpRouteParentKeys(o) {
		ns, name, _ := strings.Cut(key, "/")
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
	}
	return out
}

// gatewaysSelectingNamespaces maps a Namespace whose labels changed to the Gateways with a
// listener that admits routes by namespace selector.
func (r *GatewayReconciler) gatewaysSelectingNamespaces(ctx context.Context, _ client.Object) []reconcile.Request {
	list := &gatewayv1.GatewayList{}
	if err := r.Client.List(ctx, list, client.MatchingFields{GatewayClassIndex: r.Options.GatewayClassName}); err != nil {
		log.FromContext(ctx).Error(err, "Listing Gateways for a Namespace change")
		return nil
	}
	var out []reconcile.Request
	for _, gw := range list.Items {
		for _, l := range gw.Spec.Listeners {
			if l.AllowedRoutes != nil && l.AllowedRoutes.Namespaces != nil && l.AllowedRoutes.Namespaces.From != nil &&
				*l.AllowedRoutes.Namespaces.From == gatewayv1.NamespacesFromSelector {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}})
				break
			}
		}
	}
	return out
}

func (r *GatewayReconciler) listGateways(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	list := &gatewayv1.GatewayList{}
	if err := r.Client.List(ctx, list, opts...); err != nil {
		log.FromContext(ctx).Error(err, "Listing Gateways for a watch event")
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, gw := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}})
	}
	return out
}
