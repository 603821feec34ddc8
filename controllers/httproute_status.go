package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/revision"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

// BackendRecheckInterval is how soon a route whose backend Service does not exist is
// looked at again: Services are not watched (the cache holds only generated ones), so a
// backend created later is found within this interval.
const BackendRecheckInterval = 30 * time.Second

// HTTPRouteStatusReconciler writes the parent status of HTTPRoutes for the Gateways this
// instance owns. It runs only where no istiod writes route status (Options.RouteStatus):
// istiod writes these same entries, under the same controllerName, wherever it runs.
type HTTPRouteStatusReconciler struct {
	Client client.Client
	// APIReader checks that backend Services exist, around the label-filtered cache.
	APIReader client.Reader
	Options   Options
	Revisions *RevisionRegistry
}

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes/status,verbs=get;patch;update

// Reconcile recomputes the route's parent entries for this instance's Gateways and writes
// the route's status when they changed, keeping every other controller's entries.
func (r *HTTPRouteStatusReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	route := &gatewayv1.HTTPRoute{}
	if err := r.Client.Get(ctx, req.NamespacedName, route); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !route.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	in, err := r.inputs(ctx, route)
	if err != nil {
		return reconcile.Result{}, err
	}
	me := revision.Name(r.Options.Revision)
	var ours []gatewayv1.RouteParentStatus
	for _, ref := range route.Spec.ParentRefs {
		gw, err := r.ownedGateway(ctx, route.Namespace, ref, me)
		if err != nil {
			return reconcile.Result{}, err
		}
		if gw == nil {
			continue
		}
		ours = append(ours, gatewayv1.RouteParentStatus{
			ParentRef:      ref,
			ControllerName: v1alpha1.ControllerName,
			Conditions:     status.MergeConditions(existingParentConditions(route, ref), status.RouteParentConditions(route, ref, gw, in), metav1.Now()),
		})
	}
	parents := mergeRouteParents(route, ours)
	if routeParentsUpToDate(route.Status.Parents, parents, route.Namespace) {
		return r.recheck(ours), nil
	}
	route.Status.Parents = parents
	if err := r.Client.Status().Update(ctx, route, client.FieldOwner(v1alpha1.FieldManagerFor(r.Options.Revision))); err != nil {
		if apierrors.IsConflict(err) {
			// The route changed meanwhile; its event brings it back.
			return reconcile.Result{Requeue: true}, nil
		}
		return reconcile.Result{}, fmt.Errorf("writing status of HTTPRoute %s/%s: %w", route.Namespace, route.Name, err)
	}
	return r.recheck(ours), nil
}

// recheck asks for another look while a backend is missing.
func (r *HTTPRouteStatusReconciler) recheck(ours []gatewayv1.RouteParentStatus) reconcile.Result {
	for _, p := range ours {
		for _, c := range p.Conditions {
			if c.Type == string(gatewayv1.RouteConditionResolvedRefs) && c.Reason == string(gatewayv1.RouteReasonBackendNotFound) {
				return reconcile.Result{RequeueAfter: BackendRecheckInterval}
			}
		}
	}
	return reconcile.Result{}
}

func (r *HTTPRouteStatusReconciler) inputs(ctx context.Context, route *gatewayv1.HTTPRoute) (status.RouteInputs, error) {
	in := status.RouteInputs{Services: map[types.NamespacedName]bool{}, NamespaceLabels: namespaceLabels(ctx, r.Client)}
	for _, ns := range status.BackendNamespaces(route) {
		list := &gatewayv1.ReferenceGrantList{}
		if err := r.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
			return in, fmt.Errorf("listing ReferenceGrants in namespace %s: %w", ns, err)
		}
		in.Grants = append(in.Grants, list.Items...)
	}
	for _, key := range status.BackendServices(route, in.Grants) {
		svc := &metav1.PartialObjectMetadata{}
		svc.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Service"))
		switch err := r.APIReader.Get(ctx, key, svc); {
		case err == nil:
			in.Services[key] = true
		case !apierrors.IsNotFound(err):
			return in, fmt.Errorf("reading Service %s: %w", key, err)
		}
	}
	return in, nil
}

// ownedGateway returns the Gateway a parentRef names when it is of a served class and this
// instance owns it, else nil.
func (r *HTTPRouteStatusReconciler) ownedGateway(ctx context.Context, routeNamespace string, ref gatewayv1.ParentReference, me string) (*gatewayv1.Gateway, error) {
	parent, ok := status.ParentGateway(ref, routeNamespace)
	if !ok {
		return nil, nil
	}
	gw := &gatewayv1.Gateway{}
	if err := r.Client.Get(ctx, parent, gw); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if gc, err := servedClass(ctx, r.Client, string(gw.Spec.GatewayClassName)); err != nil || gc == nil {
		return nil, err
	}
	if ownership, ready := r.Revisions.Decide(gw); !ready || ownership.Owner != me {
		return nil, nil
	}
	return gw, nil
}

func existingParentConditions(route *gatewayv1.HTTPRoute, ref gatewayv1.ParentReference) []metav1.Condition {
	for _, p := range route.Status.Parents {
		if p.ControllerName == v1alpha1.ControllerName && status.SameParentRef(p.ParentRef, ref, route.Namespace) {
			return p.Conditions
		}
	}
	return nil
}

// mergeRouteParents keeps the entries of other controllers, and of the operator's other
// instances for parents still in spec, and puts this instance's entries in place of its
// old ones. Entries of this controller for parents no longer in spec are dropped.
func mergeRouteParents(route *gatewayv1.HTTPRoute, ours []gatewayv1.RouteParentStatus) []gatewayv1.RouteParentStatus {
	inSpec := func(ref gatewayv1.ParentReference) bool {
		for _, r := range route.Spec.ParentRefs {
			if status.SameParentRef(r, ref, route.Namespace) {
				return true
			}
		}
		return false
	}
	replaced := func(ref gatewayv1.ParentReference) bool {
		for _, p := range ours {
			if status.SameParentRef(p.ParentRef, ref, route.Namespace) {
				return true
			}
		}
		return false
	}
	out := []gatewayv1.RouteParentStatus{}
	for _, p := range route.Status.Parents {
		if p.ControllerName == v1alpha1.ControllerName && (replaced(p.ParentRef) || !inSpec(p.ParentRef)) {
			continue
		}
		out = append(out, p)
	}
	return append(out, ours...)
}

func routeParentsUpToDate(existing, desired []gatewayv1.RouteParentStatus, routeNamespace string) bool {
	if len(existing) != len(desired) {
		return false
	}
	for i := range desired {
		e, d := existing[i], desired[i]
		if e.ControllerName != d.ControllerName || !status.SameParentRef(e.ParentRef, d.ParentRef, routeNamespace) ||
			len(e.Conditions) != len(d.Conditions) || !status.ConditionsUpToDate(e.Conditions, d.Conditions) {
			return false
		}
	}
	return true
}

// SetupWithManager watches HTTPRoutes and what their parent status depends on: their
// Gateways, the ReferenceGrants of their backends, and the installed revisions.
func (r *HTTPRouteStatusReconciler) SetupWithManager(mgr ctrl.Manager) error {
	specChanged := predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{})
	return ctrl.NewControllerManagedBy(mgr).
		Named("httproute-status").
		For(&gatewayv1.HTTPRoute{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&gatewayv1.Gateway{}, handler.EnqueueRequestsFromMapFunc(r.routesOfGateway), builder.WithPredicates(specChanged)).
		Watches(&gatewayv1.ReferenceGrant{}, handler.EnqueueRequestsFromMapFunc(r.routesForReferenceGrant)).
		WatchesRawSource(source.Channel(r.Revisions.Subscribe(), handler.EnqueueRequestsFromMapFunc(r.allRoutes))).
		Complete(r)
}

// routesOfGateway maps a Gateway to the HTTPRoutes whose parentRefs name it.
func (r *HTTPRouteStatusReconciler) routesOfGateway(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listRoutes(ctx, client.MatchingFields{HTTPRouteParentIndex: o.GetNamespace() + "/" + o.GetName()})
}

// routesForReferenceGrant maps a ReferenceGrant to the HTTPRoutes of the namespaces it lets
// reference its namespace.
func (r *HTTPRouteStatusReconciler) routesForReferenceGrant(ctx context.Context, o client.Object) []reconcile.Request {
	grant, ok := o.(*gatewayv1.ReferenceGrant)
	if !ok {
		return nil
	}
	var out []reconcile.Request
	for _, ns := range status.GrantSources(grant, status.KindHTTPRoute) {
		out = append(out, r.listRoutes(ctx, client.InNamespace(ns))...)
	}
	return out
}

// allRoutes maps a change of installed revisions to every HTTPRoute: their Gateways' owners
// are decided again.
func (r *HTTPRouteStatusReconciler) allRoutes(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.listRoutes(ctx)
}

func (r *HTTPRouteStatusReconciler) listRoutes(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	list := &gatewayv1.HTTPRouteList{}
	if err := r.Client.List(ctx, list, opts...); err != nil {
		log.FromContext(ctx).Error(err, "Listing HTTPRoutes for a watch event")
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, route := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: route.Namespace, Name: route.Name}})
	}
	return out
}
