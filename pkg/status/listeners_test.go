package status

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"

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
			results := Listeners(gw, ListenerInputs{Routes: []*gatewayv1.HTTPRoute{tc.route}, NamespaceLabels: ns, Programmed: true})
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

// want is a listener's expected conditions as "Status/Reason" by type, and its supported
// kinds.
type want struct {
	conditions map[gatewayv1.ListenerConditionType]string
	kinds      []gatewayv1.Kind
}

func https(name string, refs ...gatewayv1.SecretObjectReference) gatewayv1.Listener {
	return gatewayv1.Listener{Name: gatewayv1.SectionName(name), Port: 443, Protocol: gatewayv1.HTTPSProtocolType,
		TLS: &gatewayv1.ListenerTLSConfig{CertificateRefs: refs}}
}

func secretRef(namespace, name string) gatewayv1.SecretObjectReference {
	ref := gatewayv1.SecretObjectReference{Name: gatewayv1.ObjectName(name)}
	if namespace != "" {
		ref.Namespace = ptr.To(gatewayv1.Namespace(namespace))
	}
	return ref
}

func grant(namespace, fromNamespace string, fromKind gatewayv1.Kind, toKind gatewayv1.Kind, toName string) gatewayv1.ReferenceGrant {
	g := gatewayv1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: namespace}}
	g.Spec.From = []gatewayv1.ReferenceGrantFrom{{Group: gatewayv1.GroupName, Kind: fromKind, Namespace: gatewayv1.Namespace(fromNamespace)}}
	to := gatewayv1.ReferenceGrantTo{Group: "", Kind: toKind}
	if toName != "" {
		to.Name = ptr.To(gatewayv1.ObjectName(toName))
	}
	g.Spec.To = []gatewayv1.ReferenceGrantTo{to}
	return g
}

func TestListenerConditions(t *testing.T) {
	httpKinds := []gatewayv1.Kind{"HTTPRoute", "GRPCRoute"}
	valid := CertificateStates{{Namespace: "infra", Name: "cert"}: "", {Namespace: "certs", Name: "shared"}: ""}
	cases := []struct {
		name       string
		listeners  []gatewayv1.Listener
		grants     []gatewayv1.ReferenceGrant
		certs      CertificateStates
		programmed bool
		want       map[gatewayv1.SectionName]want
	}{
		{"a valid listener of a programmed Gateway is accepted and programmed",
			[]gatewayv1.Listener{{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType}}, nil, nil, true,
			map[gatewayv1.SectionName]want{"http": {map[gatewayv1.ListenerConditionType]string{
				"Accepted": "True/Accepted", "Programmed": "True/Programmed", "ResolvedRefs": "True/ResolvedRefs", "Conflicted": "False/NoConflicts"}, httpKinds}}},
		{"listeners wait while the Gateway has no address",
			[]gatewayv1.Listener{{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType}}, nil, nil, false,
			map[gatewayv1.SectionName]want{"http": {map[gatewayv1.ListenerConditionType]string{"Accepted": "True/Accepted", "Programmed": "False/Pending"}, httpKinds}}},
		{"an unknown protocol is not accepted and supports no kinds",
			[]gatewayv1.Listener{{Name: "x", Port: 1111, Protocol: "INVALID"}}, nil, nil, true,
			map[gatewayv1.SectionName]want{"x": {map[gatewayv1.ListenerConditionType]string{"Accepted": "False/UnsupportedProtocol", "Programmed": "False/Invalid"}, []gatewayv1.Kind{}}}},
		{"a port the gateway pod uses is unavailable",
			[]gatewayv1.Listener{{Name: "status", Port: 15021, Protocol: gatewayv1.HTTPProtocolType}}, nil, nil, true,
			map[gatewayv1.SectionName]want{"status": {map[gatewayv1.ListenerConditionType]string{"Accepted": "False/PortUnavailable"}, []gatewayv1.Kind{}}}},
		{"HTTP and TCP on one port conflict",
			[]gatewayv1.Listener{{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType}, {Name: "tcp", Port: 80, Protocol: gatewayv1.TCPProtocolType}}, nil, nil, true,
			map[gatewayv1.SectionName]want{
				"http": {map[gatewayv1.ListenerConditionType]string{"Conflicted": "True/ProtocolConflict", "Accepted": "False/ProtocolConflict"}, httpKinds},
				"tcp":  {map[gatewayv1.ListenerConditionType]string{"Conflicted": "True/ProtocolConflict", "Accepted": "False/ProtocolConflict"}, []gatewayv1.Kind{"TCPRoute"}}}},
		{"two HTTPS listeners share a port",
			[]gatewayv1.Listener{https("a", secretRef("", "cert")), https("b", secretRef("", "cert"))}, nil, valid, true,
			map[gatewayv1.SectionName]want{
				"a": {map[gatewayv1.ListenerConditionType]string{"Conflicted": "False/NoConflicts", "ResolvedRefs": "True/ResolvedRefs", "Programmed": "True/Programmed"}, httpKinds},
				"b": {map[gatewayv1.ListenerConditionType]string{"Conflicted": "False/NoConflicts"}, httpKinds}}},
		{"HTTPS and TLS with one hostname on one port conflict",
			[]gatewayv1.Listener{https("a", secretRef("", "cert")),
				{Name: "b", Port: 443, Protocol: gatewayv1.TLSProtocolType, TLS: &gatewayv1.ListenerTLSConfig{Mode: ptr.To(gatewayv1.TLSModePassthrough)}}}, nil, valid, true,
			map[gatewayv1.SectionName]want{
				"a": {map[gatewayv1.ListenerConditionType]string{"Conflicted": "True/HostnameConflict", "Accepted": "False/HostnameConflict"}, httpKinds},
				"b": {map[gatewayv1.ListenerConditionType]string{"Conflicted": "True/HostnameConflict"}, []gatewayv1.Kind{"TLSRoute"}}}},
		{"a route kind the protocol does not serve is an unresolved reference",
			[]gatewayv1.Listener{{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Kinds: []gatewayv1.RouteGroupKind{{Kind: "HTTPRoute"}, {Kind: "TCPRoute"}}}}}, nil, nil, true,
			map[gatewayv1.SectionName]want{"http": {map[gatewayv1.ListenerConditionType]string{"Accepted": "True/Accepted", "ResolvedRefs": "False/InvalidRouteKinds", "Programmed": "False/Invalid"}, []gatewayv1.Kind{"HTTPRoute"}}}},
		{"only unknown route kinds leave no supported kinds",
			[]gatewayv1.Listener{{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Kinds: []gatewayv1.RouteGroupKind{{Kind: "InvalidRoute"}}}}}, nil, nil, true,
			map[gatewayv1.SectionName]want{"http": {map[gatewayv1.ListenerConditionType]string{"ResolvedRefs": "False/InvalidRouteKinds"}, []gatewayv1.Kind{}}}},
		{"a TLS passthrough listener serves TLSRoute, not TCPRoute",
			[]gatewayv1.Listener{{Name: "tls", Port: 443, Protocol: gatewayv1.TLSProtocolType, TLS: &gatewayv1.ListenerTLSConfig{Mode: ptr.To(gatewayv1.TLSModePassthrough)},
				AllowedRoutes: &gatewayv1.AllowedRoutes{Kinds: []gatewayv1.RouteGroupKind{{Kind: "TLSRoute"}, {Kind: "TCPRoute"}}}}}, nil, nil, true,
			map[gatewayv1.SectionName]want{"tls": {map[gatewayv1.ListenerConditionType]string{"Accepted": "True/Accepted", "ResolvedRefs": "False/InvalidRouteKinds"}, []gatewayv1.Kind{"TLSRoute"}}}},
		{"a TLS listener that terminates is an unsupported value",
			[]gatewayv1.Listener{{Name: "tls", Port: 8443, Protocol: gatewayv1.TLSProtocolType, TLS: &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{secretRef("", "cert")}},
				AllowedRoutes: &gatewayv1.AllowedRoutes{Kinds: []gatewayv1.RouteGroupKind{{Kind: "TLSRoute"}}}}}, nil, valid, true,
			map[gatewayv1.SectionName]want{"tls": {map[gatewayv1.ListenerConditionType]string{"Accepted": "False/UnsupportedValue", "Programmed": "False/Invalid"}, []gatewayv1.Kind{}}}},
		{"an HTTPS listener in passthrough mode is an unsupported value",
			[]gatewayv1.Listener{{Name: "https", Port: 443, Protocol: gatewayv1.HTTPSProtocolType, TLS: &gatewayv1.ListenerTLSConfig{Mode: ptr.To(gatewayv1.TLSModePassthrough)}}}, nil, nil, true,
			map[gatewayv1.SectionName]want{"https": {map[gatewayv1.ListenerConditionType]string{"Accepted": "False/UnsupportedValue"}, []gatewayv1.Kind{}}}},
		{"a certificate Secret that does not exist is an invalid certificate reference",
			[]gatewayv1.Listener{https("https", secretRef("", "missing"))}, nil, valid, true,
			map[gatewayv1.SectionName]want{"https": {map[gatewayv1.ListenerConditionType]string{"Accepted": "True/Accepted", "ResolvedRefs": "False/InvalidCertificateRef", "Programmed": "False/Invalid"}, httpKinds}}},
		{"a malformed certificate is an invalid certificate reference",
			[]gatewayv1.Listener{https("https", secretRef("", "bad"))}, nil, CertificateStates{{Namespace: "infra", Name: "bad"}: "tls: failed to find any PEM data"}, true,
			map[gatewayv1.SectionName]want{"https": {map[gatewayv1.ListenerConditionType]string{"ResolvedRefs": "False/InvalidCertificateRef"}, httpKinds}}},
		{"a certificateRef of another kind or group is an invalid certificate reference",
			[]gatewayv1.Listener{
				https("kind", gatewayv1.SecretObjectReference{Name: "cert", Kind: ptr.To(gatewayv1.Kind("WrongKind"))}),
				https("group", gatewayv1.SecretObjectReference{Name: "cert", Group: ptr.To(gatewayv1.Group("wrong.group.io"))})}, nil, valid, true,
			map[gatewayv1.SectionName]want{
				"kind":  {map[gatewayv1.ListenerConditionType]string{"ResolvedRefs": "False/InvalidCertificateRef"}, httpKinds},
				"group": {map[gatewayv1.ListenerConditionType]string{"ResolvedRefs": "False/InvalidCertificateRef"}, httpKinds}}},
		{"a Secret in another namespace without a ReferenceGrant is not permitted, whether it exists or not",
			[]gatewayv1.Listener{https("exists", secretRef("certs", "shared")), https("missing", secretRef("certs", "nope"))},
			[]gatewayv1.ReferenceGrant{
				grant("certs", "infra", "HTTPRoute", "Secret", "shared"),
				grant("certs", "elsewhere", "Gateway", "Secret", "shared"),
				grant("certs", "infra", "Gateway", "Service", "shared"),
				grant("certs", "infra", "Gateway", "Secret", "other"),
				grant("infra", "infra", "Gateway", "Secret", "shared")}, valid, true,
			map[gatewayv1.SectionName]want{
				"exists":  {map[gatewayv1.ListenerConditionType]string{"ResolvedRefs": "False/RefNotPermitted", "Programmed": "False/Invalid"}, httpKinds},
				"missing": {map[gatewayv1.ListenerConditionType]string{"ResolvedRefs": "False/RefNotPermitted"}, httpKinds}}},
		{"a ReferenceGrant for the Secret, or for all Secrets of its namespace, permits it",
			[]gatewayv1.Listener{https("https", secretRef("certs", "shared"))},
			[]gatewayv1.ReferenceGrant{grant("certs", "infra", "Gateway", "Secret", "")}, valid, true,
			map[gatewayv1.SectionName]want{"https": {map[gatewayv1.ListenerConditionType]string{"ResolvedRefs": "True/ResolvedRefs", "Programmed": "True/Programmed"}, httpKinds}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			results := Listeners(gatewayWith(tc.listeners...), ListenerInputs{NamespaceLabels: namespaces(nil), Grants: tc.grants, Certificates: tc.certs, Programmed: tc.programmed})
			if len(results) != len(tc.listeners) {
				t.Fatalf("%d listener results, want %d", len(results), len(tc.listeners))
			}
			for _, r := range results {
				w, ok := tc.want[r.Status.Name]
				if !ok {
					t.Fatalf("unexpected listener %s", r.Status.Name)
				}
				if len(r.Status.Conditions) != 4 {
					t.Errorf("%s: %d conditions, want Accepted, Programmed, ResolvedRefs and Conflicted", r.Status.Name, len(r.Status.Conditions))
				}
				for typ, expected := range w.conditions {
					c := conditionOf(t, r, typ)
					if got := string(c.Status) + "/" + c.Reason; got != expected {
						t.Errorf("%s: %s is %s (%s), want %s", r.Status.Name, typ, got, c.Message, expected)
					}
				}
				if got := kindNames(r.Status.SupportedKinds); !slices.Equal(got, w.kinds) {
					t.Errorf("%s: supported kinds %v, want %v", r.Status.Name, got, w.kinds)
				}
				if r.Valid != (conditionOf(t, r, gatewayv1.ListenerConditionAccepted).Status == metav1.ConditionTrue) {
					t.Errorf("%s: Valid=%v disagrees with Accepted", r.Status.Name, r.Valid)
				}
			}
		})
	}
}

func TestPermittedCertificateSecretsReadsOnlyWhatTheGatewayMayUse(t *testing.T) {
	gw := gatewayWith(
		https("local", secretRef("", "cert")),
		https("granted", secretRef("certs", "shared")),
		https("refused", secretRef("private", "key")),
		https("kind", gatewayv1.SecretObjectReference{Name: "cm", Kind: ptr.To(gatewayv1.Kind("ConfigMap"))}),
		https("again", secretRef("infra", "cert")),
	)
	grants := []gatewayv1.ReferenceGrant{grant("certs", "infra", "Gateway", "Secret", "shared")}
	got := PermittedCertificateSecrets(gw, grants)
	want := []types.NamespacedName{{Namespace: "infra", Name: "cert"}, {Namespace: "certs", Name: "shared"}}
	if !slices.Equal(got, want) {
		t.Errorf("PermittedCertificateSecrets = %v, want %v", got, want)
	}
	all := []types.NamespacedName{{Namespace: "infra", Name: "cert"}, {Namespace: "certs", Name: "shared"}, {Namespace: "private", Name: "key"}}
	if got := CertificateSecrets(gw); !slices.Equal(got, all) {
		t.Errorf("CertificateSecrets = %v, want %v (every Secret, permitted or not, once)", got, all)
	}
	if ns := GrantNamespaces(gw); !slices.Equal(ns, []string{"certs", "private"}) {
		t.Errorf("GrantNamespaces = %v, want [certs private]", ns)
	}
}
