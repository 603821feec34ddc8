package status

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func gatewayWith(listeners ...gatewayv1.Listener) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "infra", Generation: 3},
		Spec:       gatewayv1.GatewaySpec{GatewayClassName: "istio", Listeners: listeners},
	}
}

func route(namespace string, hostnames []gatewayv1.Hostname, refs ...gatewayv1.ParentReference) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: namespace},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: refs},
			Hostnames:       hostnames,
		},
	}
}

func namespaces(m map[string]labels.Set) NamespaceLabels {
	return func(ns string) (labels.Set, bool) {
		l, ok := m[ns]
		return l, ok
	}
}

func TestAttachedRoutes(t *testing.T) {
	same := gatewayv1.Listener{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType}
	all := gatewayv1.Listener{Name: "all", Port: 8080, Protocol: gatewayv1.HTTPProtocolType,
		AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromAll)}}}
	selected := gatewayv1.Listener{Name: "selected", Port: 8081, Protocol: gatewayv1.HTTPProtocolType,
		AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{
			From:     ptr.To(gatewayv1.NamespacesFromSelector),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"shared-gateway": "true"}},
		}}}
	hosted := gatewayv1.Listener{Name: "hosted", Port: 8082, Protocol: gatewayv1.HTTPProtocolType, Hostname: ptr.To(gatewayv1.Hostname("*.example.com"))}
	tcp := gatewayv1.Listener{Name: "tcp", Port: 9000, Protocol: gatewayv1.TCPProtocolType,
		AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromAll)}}}
	gw := gatewayWith(same, all, selected, hosted, tcp)
	ns := namespaces(map[string]labels.Set{"infra": {}, "apps": {"shared-gateway": "true"}, "other": {}})
	ref := gatewayv1.ParentReference{Name: "gw", Namespace: ptr.To(gatewayv1.Namespace("infra"))}

	cases := []struct {
		name  string
		route *gatewayv1.HTTPRoute
		want  map[gatewayv1.SectionName]int32
	}{
		{"a route in the Gateway's namespace attaches to every HTTP listener that admits it",
			route("infra", nil, gatewayv1.ParentReference{Name: "gw"}),
			map[gatewayv1.SectionName]int32{"http": 1, "all": 1, "hosted": 1}},
		{"a route in another namespace attaches only where that namespace is allowed",
			route("apps", nil, ref), map[gatewayv1.SectionName]int32{"all": 1, "selected": 1}},
		{"a route in an unselected namespace attaches only to From: All",
			route("other", nil, ref), map[gatewayv1.SectionName]int32{"all": 1}},
		{"sectionName picks one listener",
			route("infra", nil, gatewayv1.ParentReference{Name: "gw", SectionName: ptr.To(gatewayv1.SectionName("hosted"))}),
			map[gatewayv1.SectionName]int32{"hosted": 1}},
		{"port picks the listeners on it",
			route("infra", nil, gatewayv1.ParentReference{Name: "gw", Port: ptr.To(gatewayv1.PortNumber(8080))}),
			map[gatewayv1.SectionName]int32{"all": 1}},
		{"hostnames must intersect the listener's",
			route("infra", []gatewayv1.Hostname{"httpbin.other.org"}, gatewayv1.ParentReference{Name: "gw"}),
			map[gatewayv1.SectionName]int32{"http": 1, "all": 1}},
		{"a wildcard listener hostname matches a subdomain",
			route("infra", []gatewayv1.Hostname{"a.example.com"}, gatewayv1.ParentReference{Name: "gw"}),
			map[gatewayv1.SectionName]int32{"http": 1, "all": 1, "hosted": 1}},
		{"a parentRef to another Gateway does not attach",
			route("infra", nil, gatewayv1.ParentReference{Name: "other-gw"}), map[gatewayv1.SectionName]int32{}},
		{"a parentRef of another kind does not attach",
			route("infra", nil, gatewayv1.ParentReference{Name: "gw", Kind: ptr.To(gatewayv1.Kind("Service")), Group: ptr.To(gatewayv1.Group(""))}),
			map[gatewayv1.SectionName]int32{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			results := Listeners(gw, []*gatewayv1.HTTPRoute{tc.route}, ns, true)
			for _, r := range results {
				if got := r.Status.AttachedRoutes; got != tc.want[r.Status.Name] {
					t.Errorf("listener %s: %d attached routes, want %d", r.Status.Name, got, tc.want[r.Status.Name])
				}
			}
		})
	}
}

func conditionOf(t *testing.T, r ListenerResult, conditionType gatewayv1.ListenerConditionType) metav1.Condition {
	t.Helper()
	for _, c := range r.Status.Conditions {
		if c.Type == string(conditionType) {
			if c.ObservedGeneration != 3 {
				t.Errorf("%s has observedGeneration %d, want 3", c.Type, c.ObservedGeneration)
			}
			return c
		}
	}
	t.Fatalf("no %s condition", conditionType)
	return metav1.Condition{}
}

func TestListenerConditions(t *testing.T) {
	cases := []struct {
		name       string
		listeners  []gatewayv1.Listener
		programmed bool
		check      func(t *testing.T, results []ListenerResult)
	}{
		{"a valid listener of a programmed Gateway is accepted and programmed", []gatewayv1.Listener{{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType}}, true,
			func(t *testing.T, rs []ListenerResult) {
				if c := conditionOf(t, rs[0], gatewayv1.ListenerConditionProgrammed); c.Status != metav1.ConditionTrue {
					t.Errorf("Programmed %s", c.Status)
				}
				if len(rs[0].Status.SupportedKinds) != 2 {
					t.Errorf("supported kinds %v, want HTTPRoute and GRPCRoute", rs[0].Status.SupportedKinds)
				}
			}},
		{"listeners wait while the Gateway has no address", []gatewayv1.Listener{{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType}}, false,
			func(t *testing.T, rs []ListenerResult) {
				if c := conditionOf(t, rs[0], gatewayv1.ListenerConditionProgrammed); c.Status != metav1.ConditionFalse || c.Reason != "Pending" {
					t.Errorf("Programmed %s/%s, want False/Pending", c.Status, c.Reason)
				}
			}},
		{"an unknown protocol is not accepted", []gatewayv1.Listener{{Name: "x", Port: 80, Protocol: "SCTP"}}, true,
			func(t *testing.T, rs []ListenerResult) {
				if c := conditionOf(t, rs[0], gatewayv1.ListenerConditionAccepted); c.Reason != "UnsupportedProtocol" || rs[0].Valid {
					t.Errorf("Accepted %s/%s valid=%v", c.Status, c.Reason, rs[0].Valid)
				}
			}},
		{"HTTP and TCP on one port conflict", []gatewayv1.Listener{
			{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType},
			{Name: "tcp", Port: 80, Protocol: gatewayv1.TCPProtocolType},
		}, true, func(t *testing.T, rs []ListenerResult) {
			for _, r := range rs {
				if c := conditionOf(t, r, gatewayv1.ListenerConditionConflicted); c.Status != metav1.ConditionTrue || c.Reason != "ProtocolConflict" {
					t.Errorf("%s Conflicted %s/%s", r.Status.Name, c.Status, c.Reason)
				}
			}
		}},
		{"two HTTPS listeners share a port", []gatewayv1.Listener{
			{Name: "a", Port: 443, Protocol: gatewayv1.HTTPSProtocolType},
			{Name: "b", Port: 443, Protocol: gatewayv1.HTTPSProtocolType},
		}, true, func(t *testing.T, rs []ListenerResult) {
			for _, r := range rs {
				if c := conditionOf(t, r, gatewayv1.ListenerConditionConflicted); c.Status != metav1.ConditionFalse {
					t.Errorf("%s Conflicted %s", r.Status.Name, c.Status)
				}
			}
		}},
		{"a route kind the protocol does not serve is an unresolved reference", []gatewayv1.Listener{{
			Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType,
			AllowedRoutes: &gatewayv1.AllowedRoutes{Kinds: []gatewayv1.RouteGroupKind{{Kind: "HTTPRoute"}, {Kind: "TCPRoute"}}},
		}}, true, func(t *testing.T, rs []ListenerResult) {
			c := conditionOf(t, rs[0], gatewayv1.ListenerConditionResolvedRefs)
			if c.Status != metav1.ConditionFalse || c.Reason != "InvalidRouteKinds" {
				t.Errorf("ResolvedRefs %s/%s", c.Status, c.Reason)
			}
			if len(rs[0].Status.SupportedKinds) != 1 || rs[0].Status.SupportedKinds[0].Kind != "HTTPRoute" {
				t.Errorf("supported kinds %v", rs[0].Status.SupportedKinds)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, Listeners(gatewayWith(tc.listeners...), nil, namespaces(nil), tc.programmed))
		})
	}
}
