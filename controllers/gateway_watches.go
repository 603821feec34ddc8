package controllers

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

// gatewaysOfClass maps a GatewayClass to all of its Gateways: its parametersRef, its
// controllerName or its existence changes every Gateway's inputs.
func (r *GatewayReconciler) gatewaysOfClass(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listGateways(ctx, client.MatchingFields{GatewayClassIndex: o.GetName()})
}

// gatewaysOfServedClasses maps a change of installed revisions to every Gateway of every
// served class, whose owners are then decided again.
func (r *GatewayReconciler) gatewaysOfServedClasses(ctx context.Context, _ client.Object) []reconcile.Request {
	classes, err := servedClasses(ctx, r.Client)
	if err != nil {
		log.FromContext(ctx).Error(err, "Listing served GatewayClasses for a revision change")
		return nil
	}
	var out []reconcile.Request
	for _, gc := range classes {
		out = append(out, r.listGateways(ctx, client.MatchingFields{GatewayClassIndex: gc.Name})...)
	}
	return out
}

// gatewaysForConfigMap maps a ConfigMap to the Gateways it concerns: every Gateway for
// the revision's own mesh and injector ConfigMaps; every Gateway of a
// class for which it is class-level (labelled, or named by the class's parametersRef), and
// the Gateways whose parametersRef names it.
func (r *GatewayReconciler) gatewaysForConfigMap(ctx context.Context, o client.Object) []reconcile.Request {
	if r.revisionConfig.isRevisionConfigMap(o) {
		// The revision's mesh config or injector values: every proxy may change.
		return r.gatewaysOfServedClasses(ctx, o)
	}
	classes, err := classesUsingConfigMap(ctx, r.Client, o, r.Options.SystemNamespace)
	if err != nil {
		log.FromContext(ctx).Error(err, "Finding the classes of a ConfigMap", "configMap", klogRef(o.GetNamespace(), o.GetName()))
	}
	out := r.listGateways(ctx, client.MatchingFields{GatewayParametersIndex: o.GetNamespace() + "/" + o.GetName()})
	for _, class := range classes {
		out = append(out, r.listGateways(ctx, client.MatchingFields{GatewayClassIndex: class})...)
	}
	return out
}

// gatewaysForSecret maps a Secret to the Gateways whose listeners reference it.
func (r *GatewayReconciler) gatewaysForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listGateways(ctx, client.MatchingFields{GatewayCertificateIndex: o.GetNamespace() + "/" + o.GetName()})
}

// gatewaysForReferenceGrant maps a ReferenceGrant to the Gateways that may reference
// Secrets through it: those referencing a Secret in its namespace from a namespace it
// lists (kind Gateway).
func (r *GatewayReconciler) gatewaysForReferenceGrant(ctx context.Context, o client.Object) []reconcile.Request {
	grant, ok := o.(*gatewayv1.ReferenceGrant)
	if !ok {
		return nil
	}
	var out []reconcile.Request
	for _, ns := range status.GrantSources(grant, status.KindGateway) {
		list := &gatewayv1.GatewayList{}
		if err := r.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
			log.FromContext(ctx).Error(err, "Listing Gateways for a ReferenceGrant change", "referenceGrant", klogRef(grant.Namespace, grant.Name))
			return nil
		}
		for _, gw := range list.Items {
			if slices.Contains(status.GrantNamespaces(&gw), grant.Namespace) {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}})
			}
		}
	}
	return out
}

// gatewaysOfRoute maps an HTTPRoute to the Gateways in its parentRefs, whose listener
// status counts attached routes.
func gatewaysOfRoute(_ context.Context, o client.Object) []reconcile.Request {
	route := o.(*gatewayv1.HTTPRoute)
	var out []reconcile.Request
	for _, ref := range route.Spec.ParentRefs {
		if parent, ok := status.ParentGateway(ref, route.Namespace); ok {
			out = append(out, reconcile.Request{NamespacedName: parent})
		}
	}
	return out
}

// gatewaysSelectingNamespaces maps a Namespace whose labels changed to the Gateways with a
// listener that admits routes by namespace selector, and to the Gateways in it, whose class
// policy tier is chosen by those labels.
func (r *GatewayReconciler) gatewaysSelectingNamespaces(ctx context.Context, o client.Object) []reconcile.Request {
	list := &gatewayv1.GatewayList{}
	if err := r.Client.List(ctx, list); err != nil {
		log.FromContext(ctx).Error(err, "Listing Gateways for a Namespace change")
		return nil
	}
	var out []reconcile.Request
	for _, gw := range list.Items {
		if gw.Namespace == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}})
			continue
		}
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
