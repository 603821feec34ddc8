package status

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
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

// ListenerInputs is what the reconciler read for the listeners' status.
type ListenerInputs struct {
	// Routes are the HTTPRoutes whose parentRefs name the Gateway.
	Routes []*gatewayv1.HTTPRoute
	// NamespaceLabels resolves allowedRoutes namespace selectors.
	NamespaceLabels NamespaceLabels
	// Grants are the ReferenceGrants of the namespaces in GrantNamespaces.
	Grants []gatewayv1.ReferenceGrant
	// Certificates are the states of the Secrets in PermittedCertificateSecrets.
	Certificates CertificateStates
	// Programmed says whether the Gateway's resources are in place with an address.
	Programmed bool
}

// ReservedPorts are ports the gateway pod itself listens on (Envoy's admin, the agent's
// metrics and status, Envoy's Prometheus): a listener cannot have them.
var ReservedPorts = map[gatewayv1.PortNumber]string{
	15000: "Envoy's admin interface",
	15020: "the merged metrics of the istio-agent",
	15021: "the readiness (status) port",
	15090: "Envoy's Prometheus metrics",
}

// ListenerResult is one listener's status plus whether it is accepted, so that the
// Gateway's Accepted condition can say when some or all listeners are not.
type ListenerResult struct {
	Status gatewayv1.ListenerStatus
	Valid  bool
}

// Listeners computes one status entry per listener: the route kinds it supports, how many
// HTTPRoutes attach to it, and its Accepted, Programmed, ResolvedRefs and Conflicted
// conditions, with the reasons Gateway API defines for each.
func Listeners(gw *gatewayv1.Gateway, in ListenerInputs) []ListenerResult {
	gen := gw.Generation
	conflicts := listenerConflicts(gw.Spec.Listeners)
	out := make([]ListenerResult, 0, len(gw.Spec.Listeners))
	for _, l := range gw.Spec.Listeners {
		accepted := Condition(string(gatewayv1.ListenerConditionAccepted), true, string(gatewayv1.ListenerReasonAccepted), "Listener is accepted", gen)
		resolved := Condition(string(gatewayv1.ListenerConditionResolvedRefs), true, string(gatewayv1.ListenerReasonResolvedRefs), "All references are resolved", gen)
		conflicted := Condition(string(gatewayv1.ListenerConditionConflicted), false, string(gatewayv1.ListenerReasonNoConflicts), "No conflicts", gen)
		kinds, invalidKinds := listenerKinds(l)
		if reason, msg := Unservable(l); reason != "" {
			accepted = Condition(string(gatewayv1.ListenerConditionAccepted), false, string(reason), msg, gen)
			kinds, invalidKinds = []gatewayv1.RouteGroupKind{}, nil
		} else if c, found := conflicts[l.Name]; found {
			conflicted = Condition(string(gatewayv1.ListenerConditionConflicted), true, string(c.reason), c.message, gen)
			accepted = Condition(string(gatewayv1.ListenerConditionAccepted), false, string(c.reason), c.message, gen)
		}
		valid := accepted.Status == metav1.ConditionTrue
		switch reason, msg := certificateProblem(gw, l, in); {
		case len(invalidKinds) > 0:
			resolved = Condition(string(gatewayv1.ListenerConditionResolvedRefs), false, string(gatewayv1.ListenerReasonInvalidRouteKinds),
				fmt.Sprintf("Route kinds not supported on %s listeners: %s", describeProtocol(l), strings.Join(invalidKinds, ", ")), gen)
		case valid && reason != "":
			resolved = Condition(string(gatewayv1.ListenerConditionResolvedRefs), false, string(reason), msg, gen)
		}
		var attached int32
		if slices.Contains(kindNames(kinds), KindHTTPRoute) {
			for _, r := range in.Routes {
				if routeAttaches(gw, l, r, in.NamespaceLabels) {
					attached++
				}
			}
		}
		programmedCond := Condition(string(gatewayv1.ListenerConditionProgrammed), true, string(gatewayv1.ListenerReasonProgrammed), "Listener is programmed", gen)
		switch {
		case !valid:
			programmedCond = Condition(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), "Listener is not accepted (see Accepted)", gen)
		case resolved.Status == metav1.ConditionFalse:
			programmedCond = Condition(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), "Listener has unresolved references (see ResolvedRefs)", gen)
		case !in.Programmed:
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

// Unservable says why a listener cannot be served at all, or "": a protocol Istio does
// not serve, a TLS mode it does not offer for that protocol, or a port the pod itself
// uses. Such a listener is Accepted=False and gets no Service port.
func Unservable(l gatewayv1.Listener) (gatewayv1.ListenerConditionReason, string) {
	if _, known := supportedKinds[l.Protocol]; !known {
		return gatewayv1.ListenerReasonUnsupportedProtocol, fmt.Sprintf("Protocol %q is not supported; use one of HTTP, HTTPS, TLS, TCP, UDP", l.Protocol)
	}
	if what, reserved := ReservedPorts[l.Port]; reserved {
		return gatewayv1.ListenerReasonPortUnavailable, fmt.Sprintf("Port %d is %s of the gateway pod; choose another port", l.Port, what)
	}
	mode := tlsMode(l)
	switch {
	case l.Protocol == gatewayv1.HTTPSProtocolType && mode == gatewayv1.TLSModePassthrough:
		return gatewayv1.ListenerReasonUnsupportedValue, "tls.mode Passthrough is not supported on HTTPS listeners; use protocol TLS for passthrough"
	case l.Protocol == gatewayv1.TLSProtocolType && mode == gatewayv1.TLSModeTerminate:
		return gatewayv1.ListenerReasonUnsupportedValue, "tls.mode Terminate is not supported on TLS listeners (TLSRoute is served in Passthrough mode); use protocol HTTPS to terminate TLS"
	}
	return "", ""
}

// ServedListeners are the listeners the Gateway's proxies serve: those that are accepted,
// neither unservable nor in conflict with another. Only they get a Service port.
func ServedListeners(listeners []gatewayv1.Listener) []gatewayv1.Listener {
	conflicts := listenerConflicts(listeners)
	var out []gatewayv1.Listener
	for _, l := range listeners {
		if reason, _ := Unservable(l); reason == "" {
			if _, conflicted := conflicts[l.Name]; !conflicted {
				out = append(out, l)
			}
		}
	}
	return out
}

// tlsMode is the listener's TLS mode with Gateway API's default (Terminate), or "" for a
// listener without TLS.
func tlsMode(l gatewayv1.Listener) gatewayv1.TLSModeType {
	if l.Protocol != gatewayv1.HTTPSProtocolType && l.Protocol != gatewayv1.TLSProtocolType {
		return ""
	}
	if l.TLS != nil && l.TLS.Mode != nil {
		return *l.TLS.Mode
	}
	return gatewayv1.TLSModeTerminate
}

func describeProtocol(l gatewayv1.Listener) string {
	if mode := tlsMode(l); mode != "" {
		return fmt.Sprintf("%s (%s)", l.Protocol, mode)
	}
	return string(l.Protocol)
}

// certificateProblem checks a terminating listener's certificateRefs in order: the kind
// must be a core Secret, a cross-namespace reference needs a ReferenceGrant (checked
// before existence, so that a listener never learns what it may not see), and the Secret
// must exist and hold a certificate and key that parse.
func certificateProblem(gw *gatewayv1.Gateway, l gatewayv1.Listener, in ListenerInputs) (gatewayv1.ListenerConditionReason, string) {
	if tlsMode(l) != gatewayv1.TLSModeTerminate {
		return "", ""
	}
	if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
		return gatewayv1.ListenerReasonInvalidCertificateRef, "A listener that terminates TLS needs tls.certificateRefs"
	}
	for _, ref := range l.TLS.CertificateRefs {
		r := certificateRef(gw.Namespace, ref)
		if r.group != "" || r.kind != KindSecret {
			return gatewayv1.ListenerReasonInvalidCertificateRef,
				fmt.Sprintf("certificateRef %s %s/%s is not supported; reference a core Secret (group \"\", kind Secret)", groupKind(r.group, r.kind), r.key.Namespace, r.key.Name)
		}
		if !ReferenceGranted(in.Grants, gatewayv1.GroupName, KindGateway, gw.Namespace, "", KindSecret, r.key.Namespace, r.key.Name) {
			return gatewayv1.ListenerReasonRefNotPermitted,
				fmt.Sprintf("Secret %s is in another namespace and no ReferenceGrant in %s allows Gateways from %s to use it", r.key, r.key.Namespace, gw.Namespace)
		}
		problem, found := in.Certificates[r.key]
		if !found {
			return gatewayv1.ListenerReasonInvalidCertificateRef, fmt.Sprintf("Secret %s does not exist", r.key)
		}
		if problem != "" {
			return gatewayv1.ListenerReasonInvalidCertificateRef, fmt.Sprintf("Secret %s is not a usable TLS certificate: %s", r.key, problem)
		}
	}
	return "", ""
}

func groupKind(group gatewayv1.Group, kind gatewayv1.Kind) string {
	if group == "" {
		return string(kind)
	}
	return string(kind) + "." + string(group)
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

// listenerConflict is why a listener cannot share its port.
type listenerConflict struct {
	reason  gatewayv1.ListenerConditionReason
	message string
}

// listenerConflicts finds listeners that cannot share a port: with a listener of an
// incompatible protocol (HTTP and HTTPS/TLS can share with their own kind, nothing else
// can), or, among HTTPS and TLS listeners, with one of the same hostname, which makes the
// TLS server name ambiguous.
func listenerConflicts(listeners []gatewayv1.Listener) map[gatewayv1.SectionName]listenerConflict {
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
	hostname := func(l gatewayv1.Listener) string {
		if l.Hostname == nil {
			return ""
		}
		return string(*l.Hostname)
	}
	out := map[gatewayv1.SectionName]listenerConflict{}
	for i, a := range listeners {
		for j, b := range listeners {
			if i == j || a.Port != b.Port {
				continue
			}
			if family(a.Protocol) != family(b.Protocol) {
				out[a.Name] = listenerConflict{gatewayv1.ListenerReasonProtocolConflict,
					fmt.Sprintf("Port %d is also used by listener %q with protocol %s", a.Port, b.Name, b.Protocol)}
				break
			}
			if family(a.Protocol) == "tls" && a.Protocol != b.Protocol && hostname(a) == hostname(b) {
				out[a.Name] = listenerConflict{gatewayv1.ListenerReasonHostnameConflict,
					fmt.Sprintf("Listener %q serves the same hostname %q on port %d with protocol %s", b.Name, hostname(a), a.Port, b.Protocol)}
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
	parent, ok := ParentGateway(ref, routeNamespace)
	return ok && parent.Namespace == gw.Namespace && parent.Name == gw.Name
}

// ParentGateway names the Gateway a route's parentRef refers to, with Gateway API's
// defaults (group gateway.networking.k8s.io, kind Gateway, the route's namespace); ok is
// false for a parent of another kind.
func ParentGateway(ref gatewayv1.ParentReference, routeNamespace string) (types.NamespacedName, bool) {
	if ref.Group != nil && *ref.Group != gatewayv1.GroupName {
		return types.NamespacedName{}, false
	}
	if ref.Kind != nil && *ref.Kind != KindGateway {
		return types.NamespacedName{}, false
	}
	ns := routeNamespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	return types.NamespacedName{Namespace: ns, Name: string(ref.Name)}, true
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
