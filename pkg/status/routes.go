package status

import (
	"fmt"
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// KindService is the only backend kind the operator's proxies route to.
const KindService gatewayv1.Kind = "Service"

// RouteInputs is what the reconciler read for one HTTPRoute's parent status.
type RouteInputs struct {
	// NamespaceLabels resolves listeners' allowedRoutes namespace selectors.
	NamespaceLabels NamespaceLabels
	// Grants are the ReferenceGrants of the namespaces the route's backendRefs point to.
	Grants []gatewayv1.ReferenceGrant
	// Services says which of the backend Services (BackendServices) exist.
	Services map[types.NamespacedName]bool
}

// RouteParentConditions computes an HTTPRoute's Accepted and ResolvedRefs conditions for one
// parentRef that names gw, with the reasons Gateway API defines: the listeners the
// reference selects must exist (NoMatchingParent), admit the route's namespace and kind
// (NotAllowedByListeners) and share a hostname with it (NoMatchingListenerHostname); every
// backendRef must be a core Service (InvalidKind), permitted across namespaces
// (RefNotPermitted) and exist (BackendNotFound).
func RouteParentConditions(route *gatewayv1.HTTPRoute, ref gatewayv1.ParentReference, gw *gatewayv1.Gateway, in RouteInputs) []metav1.Condition {
	gen := route.Generation
	accepted := Condition(string(gatewayv1.RouteConditionAccepted), true, string(gatewayv1.RouteReasonAccepted), "Route is accepted", gen)
	var selected, allowed, hosted int
	for _, l := range gw.Spec.Listeners {
		if (ref.SectionName != nil && *ref.SectionName != l.Name) || (ref.Port != nil && *ref.Port != l.Port) {
			continue
		}
		selected++
		kinds, _ := listenerKinds(l)
		if reason, _ := Unservable(l); reason != "" || !containsKind(kinds, KindHTTPRoute) ||
			!namespaceAllowed(gw, l, route.Namespace, in.NamespaceLabels) {
			continue
		}
		allowed++
		if hostnamesIntersect(l.Hostname, route.Spec.Hostnames) {
			hosted++
		}
	}
	switch {
	case selected == 0:
		accepted = Condition(string(gatewayv1.RouteConditionAccepted), false, string(gatewayv1.RouteReasonNoMatchingParent),
			fmt.Sprintf("Gateway %s/%s has no listener matching the parentRef's sectionName or port", gw.Namespace, gw.Name), gen)
	case allowed == 0:
		accepted = Condition(string(gatewayv1.RouteConditionAccepted), false, string(gatewayv1.RouteReasonNotAllowedByListeners),
			fmt.Sprintf("No listener of Gateway %s/%s admits HTTPRoutes from namespace %s", gw.Namespace, gw.Name, route.Namespace), gen)
	case hosted == 0:
		accepted = Condition(string(gatewayv1.RouteConditionAccepted), false, string(gatewayv1.RouteReasonNoMatchingListenerHostname),
			fmt.Sprintf("No hostname of the route matches a listener hostname of Gateway %s/%s", gw.Namespace, gw.Name), gen)
	}
	resolved := Condition(string(gatewayv1.RouteConditionResolvedRefs), true, string(gatewayv1.RouteReasonResolvedRefs), "All references are resolved", gen)
	if reason, msg := backendProblem(route, in); reason != "" {
		resolved = Condition(string(gatewayv1.RouteConditionResolvedRefs), false, string(reason), msg, gen)
	}
	return []metav1.Condition{accepted, resolved}
}

func containsKind(kinds []gatewayv1.RouteGroupKind, kind gatewayv1.Kind) bool {
	for _, k := range kinds {
		if k.Kind == kind {
			return true
		}
	}
	return false
}

// routeBackends are an HTTPRoute's rules' backendRefs.
func routeBackends(route *gatewayv1.HTTPRoute) []objectRef {
	var out []objectRef
	for _, rule := range route.Spec.Rules {
		for _, b := range rule.BackendRefs {
			out = append(out, newObjectRef(b.Group, b.Kind, KindService, b.Namespace, b.Name, route.Namespace))
		}
	}
	return out
}

// BackendServices lists the Services an HTTPRoute's backendRefs name and may use, for the
// reconciler to look up.
func BackendServices(route *gatewayv1.HTTPRoute, grants []gatewayv1.ReferenceGrant) []types.NamespacedName {
	return permittedRefs(routeBackends(route), grants, KindHTTPRoute, route.Namespace, KindService)
}

// BackendNamespaces are the namespaces whose ReferenceGrants decide the route's
// cross-namespace backendRefs.
func BackendNamespaces(route *gatewayv1.HTTPRoute) []string {
	return refNamespaces(routeBackends(route), route.Namespace)
}

func backendProblem(route *gatewayv1.HTTPRoute, in RouteInputs) (gatewayv1.RouteConditionReason, string) {
	for _, b := range routeBackends(route) {
		switch {
		case b.group != "" || b.kind != KindService:
			return gatewayv1.RouteReasonInvalidKind, fmt.Sprintf("backendRef %s %s is not supported; reference a Service", groupKind(b.group, b.kind), b.key)
		case !ReferenceGranted(in.Grants, gatewayv1.GroupName, KindHTTPRoute, route.Namespace, "", KindService, b.key.Namespace, b.key.Name):
			return gatewayv1.RouteReasonRefNotPermitted,
				fmt.Sprintf("Service %s is in another namespace and no ReferenceGrant in %s allows HTTPRoutes from %s to use it", b.key, b.key.Namespace, route.Namespace)
		case !in.Services[b.key]:
			return gatewayv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s does not exist", b.key)
		}
	}
	return "", ""
}

// SameParentRef reports whether two parentRefs name the same parent and section, with
// Gateway API's defaults applied (group gateway.networking.k8s.io, kind Gateway, the
// route's namespace).
func SameParentRef(a, b gatewayv1.ParentReference, routeNamespace string) bool {
	norm := func(r gatewayv1.ParentReference) gatewayv1.ParentReference {
		if r.Group == nil {
			r.Group = new(gatewayv1.Group(gatewayv1.GroupName))
		}
		if r.Kind == nil {
			r.Kind = new(KindGateway)
		}
		if r.Namespace == nil {
			r.Namespace = new(gatewayv1.Namespace(routeNamespace))
		}
		return r
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
