package status

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// KindHTTPRoute is the route kind whose attachments the operator counts.
const KindHTTPRoute gatewayv1.Kind = "HTTPRoute"

// supportedKinds are the route kinds Istio serves on each listener protocol.
var supportedKinds = map[gatewayv1.ProtocolType][]gatewayv1.Kind{
	gatewayv1.HTTPProtocolType:  {KindHTTPRoute, "GRPCRoute"},
	gatewayv1.HTTPSProtocolType: {KindHTTPRoute, "GRPCRoute"},
	gatewayv1.TLSProtocolType:   {"TLSRoute"},
	gatewayv1.TCPProtocolType:   {"TCPRoute"},
	gatewayv1.UDPProtocolType:   {"UDPRoute"},
}

// NamespaceLabels looks up a namespace's labels for allowedRoutes selectors; found is
// false when the namespace is not known.
type NamespaceLabels func(namespace string) (labels.Set, bool)

// ListenerResult is one listener's status plus whether it is usable, so that the Gateway's
// Accepted condition can say when some listeners are not.
type ListenerResult struct {
	Status gatewayv1.ListenerStatus
	Valid  bool
}

// Listeners computes one status entry per listener: the route kinds it supports, how many
// HTTPRoutes attach to it, and its Accepted, Programmed, ResolvedRefs and Conflicted
// conditions.
func Listeners(gw *gatewayv1.Gateway, routes []*gatewayv1.HTTPRoute, nsLabels NamespaceLabels, programmed bool) []ListenerResult {
	gen := gw.Generation
	conflicts := portConflicts(gw.Spec.Listeners)
	out := make([]ListenerResult, 0, len(gw.Spec.Listeners))
	for _, l := range gw.Spec.Listeners {
		kinds, invalidKinds := listenerKinds(l)
		_, protocolKnown := supportedKinds[l.Protocol]
		var attached int32
		if slices.Contains(kindNames(kinds), KindHTTPRoute) {
			for _, r := range routes {
				if routeAttaches(gw, l, r, nsLabels) {
					attached++
				}
			}
		}
		accepted := Condition(string(gatewayv1.ListenerConditionAccepted), true, string(gatewayv1.ListenerReasonAccepted), "Listener is accepted", gen)
		resolved := Condition(string(gatewayv1.ListenerConditionResolvedRefs), true, string(gatewayv1.ListenerReasonResolvedRefs), "All references are resolved", gen)
		conflicted := Condition(string(gatewayv1.ListenerConditionConflicted), false, string(gatewayv1.ListenerReasonNoConflicts), "No conflicts", gen)
		valid := true
		switch {
		case !protocolKnown:
			accepted = Condition(string(gatewayv1.ListenerConditionAccepted), false, string(gatewayv1.ListenerReasonUnsupportedProtocol),
				fmt.Sprintf("Protocol %q is not supported", l.Protocol), gen)
			valid = false
		case conflicts[l.Name] != "":
			conflicted = Condition(string(gatewayv1.ListenerConditionConflicted), true, string(gatewayv1.ListenerReasonProtocolConflict), conflicts[l.Name], gen)
			accepted = Condition(string(gatewayv1.ListenerConditionAccepted), false, string(gatewayv1.ListenerReasonProtocolConflict), conflicts[l.Name], gen)
			valid = false
		}
		if len(invalidKinds) > 0 {
			resolved = Condition(string(gatewayv1.ListenerConditionResolvedRefs), false, string(gatewayv1.ListenerReasonInvalidRouteKinds),
				fmt.Sprintf("Route kinds not supported on %s listeners: %s", l.Protocol, strings.Join(invalidKinds, ", ")), gen)
		}
		programmedCond := Condition(string(gatewayv1.ListenerConditionProgrammed), true, string(gatewayv1.ListenerReasonProgrammed), "Listener is programmed", gen)
		switch {
		case !valid:
			programmedCond = Condition(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), "Listener is not valid", gen)
		case !programmed:
			programmedCond = Condition(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonPending), "Waiting for the Gateway to be programmed", gen)
		}
		out = append(out, ListenerResult{
			Valid: valid,
			Status: gatewayv1.ListenerStatus{
				Name:           l.Name,
				SupportedKinds: kinds,
				AttachedRoutes: attached,
				Conditions:     []metav1.Condition{accepted, programmedCond, resolved, conflicted},
			},
		})
	}
	return out
}

func kindNames(kinds []gatewayv1.RouteGroupKind) []gatewayv1.Kind {
	out := make([]gatewayv1.Kind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k.Kind)
	}
	return out
}

// listenerKinds intersects the kinds a listener asks for with what its protocol supports.
func listenerKinds(l gatewayv1.Listener) ([]gatewayv1.RouteGroupKind, []string) {
	supported := supportedKinds[l.Protocol]
	group := gatewayv1.Group(gatewayv1.GroupName)
	kinds := []gatewayv1.RouteGroupKind{}
	var invalid []string
	if l.AllowedRoutes == nil || len(l.AllowedRoutes.Kinds) == 0 {
		for _, k := range supported {
			kinds = append(kinds, gatewayv1.RouteGroupKind{Group: new(group), Kind: k})
		}
		return kinds, nil
	}
	for _, k := range l.AllowedRoutes.Kinds {
		g := gatewayv1.Group(gatewayv1.GroupName)
		if k.Group != nil {
			g = *k.Group
		}
		if g == group && slices.Contains(supported, k.Kind) {
			kinds = append(kinds, gatewayv1.RouteGroupKind{Group: new(g), Kind: k.Kind})
		} else {
			invalid = append(invalid, string(k.Kind))
		}
	}
	return kinds, invalid
}

// portConflicts finds listeners sharing a port with a listener of an incompatible
// protocol: HTTP and HTTPS/TLS can share with their own kind, nothing else can.
func portConflicts(listeners []gatewayv1.Listener) map[gatewayv1.SectionName]string {
	family := func(p gatewayv1.ProtocolType) string {
		switch p {
		case gatewayv1.HTTPProtocolType:
			return "http"
		case gatewayv1.HTTPSProtocolType, gatewayv1.TLSProtocolType:
			return "tls"
		default:
			return string(p)
		}
	}
	out := map[gatewayv1.SectionName]string{}
	for i, a := range listeners {
		for j, b := range listeners {
			if i != j && a.Port == b.Port && family(a.Protocol) != family(b.Protocol) {
				out[a.Name] = fmt.Sprintf("Port %d is also used by listener %q with protocol %s", a.Port, b.Name, b.Protocol)
				break
			}
		}
	}
	return out
}

// routeAttaches applies Gateway API's attachment rules: a parentRef naming this Gateway
// (and this listener, by section name or port, when given), a namespace the listener
// allows, and at least one hostname in common.
func routeAttaches(gw *gatewayv1.Gateway, l gatewayv1.Listener, r *gatewayv1.HTTPRoute, nsLabels NamespaceLabels) bool {
	if !namespaceAllowed(gw, l, r.Namespace, nsLabels) {
		return false
	}
	if !hostnamesIntersect(l.Hostname, r.Spec.Hostnames) {
		return false
	}
	for _, ref := range r.Spec.ParentRefs {
		if !RefersTo(ref, r.Namespace, gw) {
			continue
		}
		if ref.SectionName != nil && *ref.SectionName != l.Name {
			continue
		}
		if ref.Port != nil && *ref.Port != l.Port {
			continue
		}
		return true
	}
	return false
}

// RefersTo reports whether a route's parentRef names the Gateway.
func RefersTo(ref gatewayv1.ParentReference, routeNamespace string, gw *gatewayv1.Gateway) bool {
	if ref.Group != nil && *ref.Group != gatewayv1.GroupName {
		return false
	}
	if ref.Kind != nil && *ref.Kind != "Gateway" {
		return false
	}
	ns := routeNamespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	return ns == gw.Namespace && string(ref.Name) == gw.Name
}

func namespaceAllowed(gw *gatewayv1.Gateway, l gatewayv1.Listener, namespace string, nsLabels NamespaceLabels) bool {
	from := gatewayv1.NamespacesFromSame
	var selector *metav1.LabelSelector
	if l.AllowedRoutes != nil && l.AllowedRoutes.Namespaces != nil {
		if l.AllowedRoutes.Namespaces.From != nil {
			from = *l.AllowedRoutes.Namespaces.From
		}
		selector = l.AllowedRoutes.Namespaces.Selector
	}
	switch from {
	case gatewayv1.NamespacesFromAll:
		return true
	case gatewayv1.NamespacesFromSame:
		return namespace == gw.Namespace
	case gatewayv1.NamespacesFromSelector:
		if selector == nil {
			return false
		}
		sel, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil {
			return false
		}
		set, found := nsLabels(namespace)
		return found && sel.Matches(set)
	default:
		return false
	}
}

func hostnamesIntersect(listener *gatewayv1.Hostname, route []gatewayv1.Hostname) bool {
	if listener == nil || *listener == "" || len(route) == 0 {
		return true
	}
	for _, h := range route {
		if hostnameMatches(string(*listener), string(h)) {
			return true
		}
	}
	return false
}

// hostnameMatches follows Gateway API's wildcard rules: "*.example.com" matches any name
// with at least one more label in front of example.com, on either side.
func hostnameMatches(a, b string) bool {
	if a == b {
		return true
	}
	wildcardMatch := func(pattern, name string) bool {
		if !strings.HasPrefix(pattern, "*.") {
			return false
		}
		suffix := pattern[1:]
		return strings.HasSuffix(name, suffix) && len(name) > len(suffix)
	}
	return wildcardMatch(a, b) || wildcardMatch(b, a)
}
