package status

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func backend(namespace, name string) gatewayv1.HTTPBackendRef {
	ref := gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To(gatewayv1.PortNumber(8080))}}}
	if namespace != "" {
		ref.Namespace = ptr.To(gatewayv1.Namespace(namespace))
	}
	return ref
}

func TestRouteParentConditions(t *testing.T) {
	hosted := gatewayv1.Listener{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType, Hostname: ptr.To(gatewayv1.Hostname("foo.example.com"))}
	tcp := gatewayv1.Listener{Name: "tcp", Port: 9000, Protocol: gatewayv1.TCPProtocolType}
	gw := gatewayWith(hosted, tcp)
	existing := map[types.NamespacedName]bool{{Namespace: "infra", Name: "web"}: true, {Namespace: "backends", Name: "api"}: true}
	grantRoutes := grant("backends", "infra", "HTTPRoute", "Service", "api")
	ref := gatewayv1.ParentReference{Name: "gw"}
	cases := []struct {
		name          string
		ref           gatewayv1.ParentReference
		routeNS       string
		hostnames     []gatewayv1.Hostname
		backends      []gatewayv1.HTTPBackendRef
		grants        []gatewayv1.ReferenceGrant
		accepted      string
		resolvedRefs  string
		namespaceSets map[string]labels.Set
	}{
		{"a route on a listener with a matching hostname and an existing Service", ref, "infra", []gatewayv1.Hostname{"foo.example.com"},
			[]gatewayv1.HTTPBackendRef{backend("", "web")}, nil, "True/Accepted", "True/ResolvedRefs", nil},
		{"a route whose hostnames match no listener", ref, "infra", []gatewayv1.Hostname{"not-accepted.test.com"},
			[]gatewayv1.HTTPBackendRef{backend("", "web")}, nil, "False/NoMatchingListenerHostname", "True/ResolvedRefs", nil},
		{"a sectionName no listener has", gatewayv1.ParentReference{Name: "gw", SectionName: ptr.To(gatewayv1.SectionName("https"))}, "infra", nil,
			nil, nil, "False/NoMatchingParent", "True/ResolvedRefs", nil},
		{"a sectionName naming a listener that serves no HTTPRoute", gatewayv1.ParentReference{Name: "gw", SectionName: ptr.To(gatewayv1.SectionName("tcp"))}, "infra", nil,
			nil, nil, "False/NotAllowedByListeners", "True/ResolvedRefs", nil},
		{"a route from a namespace the listeners do not admit", gatewayv1.ParentReference{Name: "gw", Namespace: ptr.To(gatewayv1.Namespace("infra"))}, "apps", nil,
			nil, nil, "False/NotAllowedByListeners", "True/ResolvedRefs", nil},
		{"a backend Service that does not exist", ref, "infra", nil,
			[]gatewayv1.HTTPBackendRef{backend("", "does-not-exist")}, nil, "True/Accepted", "False/BackendNotFound", nil},
		{"a backend in another namespace without a ReferenceGrant", ref, "infra", nil,
			[]gatewayv1.HTTPBackendRef{backend("backends", "api")}, nil, "True/Accepted", "False/RefNotPermitted", nil},
		{"a backend in another namespace with a ReferenceGrant", ref, "infra", nil,
			[]gatewayv1.HTTPBackendRef{backend("backends", "api")}, []gatewayv1.ReferenceGrant{grantRoutes}, "True/Accepted", "True/ResolvedRefs", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			route := route(tc.routeNS, tc.hostnames, tc.ref)
			route.Generation = 7
			route.Spec.Rules = []gatewayv1.HTTPRouteRule{{BackendRefs: tc.backends}}
			services := map[types.NamespacedName]bool{}
			for _, key := range BackendServices(route, tc.grants) {
				services[key] = existing[key]
			}
			conds := RouteParentConditions(route, tc.ref, gw, RouteInputs{NamespaceLabels: namespaces(tc.namespaceSets), Grants: tc.grants, Services: services})
			if len(conds) != 2 {
				t.Fatalf("%d conditions, want Accepted and ResolvedRefs", len(conds))
			}
			for i, want := range []string{tc.accepted, tc.resolvedRefs} {
				if got := string(conds[i].Status) + "/" + conds[i].Reason; got != want || conds[i].ObservedGeneration != 7 {
					t.Errorf("%s = %s (generation %d, %q), want %s", conds[i].Type, got, conds[i].ObservedGeneration, conds[i].Message, want)
				}
			}
		})
	}
}

func TestSameParentRefAppliesTheDefaults(t *testing.T) {
	explicit := gatewayv1.ParentReference{Group: ptr.To(gatewayv1.Group(gatewayv1.GroupName)), Kind: ptr.To(gatewayv1.Kind("Gateway")), Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "gw"}
	if !SameParentRef(gatewayv1.ParentReference{Name: "gw"}, explicit, "infra") {
		t.Error("a parentRef with defaults left out differs from the same one spelt out")
	}
	if SameParentRef(gatewayv1.ParentReference{Name: "gw"}, explicit, "apps") {
		t.Error("parentRefs in different namespaces are the same")
	}
	if SameParentRef(gatewayv1.ParentReference{Name: "gw", SectionName: ptr.To(gatewayv1.SectionName("http"))}, explicit, "infra") {
		t.Error("a parentRef with a sectionName is the same as one without")
	}
}

func TestParentGatewayAppliesTheDefaults(t *testing.T) {
	cases := []struct {
		name string
		ref  gatewayv1.ParentReference
		want string
		ok   bool
	}{
		{name: "a bare name is a Gateway in the route's namespace", ref: gatewayv1.ParentReference{Name: "gw"}, want: "apps/gw", ok: true},
		{name: "an explicit namespace is kept", ref: gatewayv1.ParentReference{Name: "gw", Namespace: ptr.To(gatewayv1.Namespace("infra"))}, want: "infra/gw", ok: true},
		{name: "an explicit Gateway kind and group is a Gateway", ref: gatewayv1.ParentReference{Name: "gw",
			Group: ptr.To(gatewayv1.Group(gatewayv1.GroupName)), Kind: ptr.To(gatewayv1.Kind("Gateway"))}, want: "apps/gw", ok: true},
		{name: "a Service parent is not a Gateway", ref: gatewayv1.ParentReference{Name: "svc", Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service"))}},
		{name: "a Gateway of another API group is not one", ref: gatewayv1.ParentReference{Name: "gw", Group: ptr.To(gatewayv1.Group("example.com"))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParentGateway(tc.ref, "apps")
			if ok != tc.ok || (ok && got.String() != tc.want) {
				t.Errorf("got %v %v, want %q %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
