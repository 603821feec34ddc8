package sources

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

const system = "aks-istio-system"

func gatewayWith(ref *gatewayv1.LocalParametersReference) *gatewayv1.Gateway {
	gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "gw"}}
	if ref != nil {
		gw.Spec.Infrastructure = &gatewayv1.GatewayInfrastructure{ParametersRef: ref}
	}
	return gw
}

func classWith(ref *gatewayv1.ParametersReference) *gatewayv1.GatewayClass {
	return &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: gatewayv1.GatewayClassSpec{ParametersRef: ref}}
}

func configMap(namespace, name string, labels map[string]string, created time.Time) *metav1.ObjectMeta {
	return &metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels, CreationTimestamp: metav1.NewTime(created)}
}

func TestGatewayParameters(t *testing.T) {
	cases := []struct {
		name    string
		gw      *gatewayv1.Gateway
		want    *types.NamespacedName
		problem string
	}{
		{name: "no reference reads nothing", gw: gatewayWith(nil)},
		{name: "a ConfigMap in the Gateway's namespace", gw: gatewayWith(&gatewayv1.LocalParametersReference{Kind: "ConfigMap", Name: "opts"}),
			want: &types.NamespacedName{Namespace: "team-a", Name: "opts"}},
		{name: "another kind is a problem the user must fix", gw: gatewayWith(&gatewayv1.LocalParametersReference{Group: "example.com", Kind: "GatewayConfig", Name: "x"}),
			problem: `parametersRef example.com/GatewayConfig x is not supported; only group "" kind ConfigMap is`},
		{name: "a ConfigMap of another group is another kind", gw: gatewayWith(&gatewayv1.LocalParametersReference{Group: "example.com", Kind: "ConfigMap", Name: "x"}),
			problem: `parametersRef example.com/ConfigMap x is not supported; only group "" kind ConfigMap is`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := GatewayParameters(tc.gw)
			if (got.ConfigMap == nil) != (tc.want == nil) || (got.ConfigMap != nil && *got.ConfigMap != *tc.want) {
				t.Errorf("ConfigMap %v, want %v", got.ConfigMap, tc.want)
			}
			if got.Problem != tc.problem {
				t.Errorf("problem %q, want %q", got.Problem, tc.problem)
			}
		})
	}
}

func TestClassParameters(t *testing.T) {
	ns := gatewayv1.Namespace(system)
	cases := []struct {
		name    string
		gc      *gatewayv1.GatewayClass
		want    *types.NamespacedName
		problem string
	}{
		{name: "no reference reads nothing", gc: classWith(nil)},
		{name: "a ConfigMap with its namespace", gc: classWith(&gatewayv1.ParametersReference{Kind: "ConfigMap", Name: "defaults", Namespace: &ns}),
			want: &types.NamespacedName{Namespace: system, Name: "defaults"}},
		{name: "a ConfigMap without a namespace cannot be found", gc: classWith(&gatewayv1.ParametersReference{Kind: "ConfigMap", Name: "defaults"}),
			problem: "GatewayClass istio parametersRef ConfigMap defaults has no namespace"},
		{name: "another kind is a problem", gc: classWith(&gatewayv1.ParametersReference{Group: "example.com", Kind: "Params", Name: "p"}),
			problem: `GatewayClass istio parametersRef example.com/Params p is not supported; only group "" kind ConfigMap is`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ClassParameters(tc.gc)
			if (got.ConfigMap == nil) != (tc.want == nil) || (got.ConfigMap != nil && *got.ConfigMap != *tc.want) {
				t.Errorf("ConfigMap %v, want %v", got.ConfigMap, tc.want)
			}
			if got.Problem != tc.problem {
				t.Errorf("problem %q, want %q", got.Problem, tc.problem)
			}
		})
	}
}

func TestIsClassConfigMapOf(t *testing.T) {
	ns := gatewayv1.Namespace(system)
	labelled := map[string]string{v1alpha1.DefaultsForClassLabel: "istio"}
	now := time.Now()
	cases := []struct {
		name string
		gc   *gatewayv1.GatewayClass
		cm   metav1.Object
		want bool
	}{
		{name: "labelled in the system namespace", gc: classWith(nil), cm: configMap(system, "d", labelled, now), want: true},
		{name: "labelled elsewhere has no effect", gc: classWith(nil), cm: configMap("team-a", "d", labelled, now)},
		{name: "labelled for another class", gc: classWith(nil), cm: configMap(system, "d", map[string]string{v1alpha1.DefaultsForClassLabel: "other"}, now)},
		{name: "named by the class's parametersRef", gc: classWith(&gatewayv1.ParametersReference{Kind: "ConfigMap", Name: "p", Namespace: &ns}),
			cm: configMap(system, "p", nil, now), want: true},
		{name: "a parametersRef replaces the label", gc: classWith(&gatewayv1.ParametersReference{Kind: "ConfigMap", Name: "p", Namespace: &ns}),
			cm: configMap(system, "d", labelled, now)},
		{name: "an unusable parametersRef names no ConfigMap", gc: classWith(&gatewayv1.ParametersReference{Kind: "ConfigMap", Name: "p"}),
			cm: configMap(system, "p", nil, now)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsClassConfigMapOf(tc.gc, tc.cm, system); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInForce(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	older := configMap(system, "zeta", nil, t0)
	newer := configMap(system, "alpha", nil, t0.Add(time.Minute))
	twin := configMap(system, "beta", nil, t0)
	uncreated := configMap(system, "aaa", nil, time.Time{})
	names := func(objs []metav1.Object) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.GetName())
		}
		return out
	}
	cases := []struct {
		name        string
		labelled    []metav1.Object
		inForce     string
		wantIgnored []string
	}{
		{name: "none is no defaults"},
		{name: "the oldest wins, whatever its name", labelled: []metav1.Object{newer, older}, inForce: "zeta", wantIgnored: []string{"alpha"}},
		{name: "equal ages go by name", labelled: []metav1.Object{older, twin}, inForce: "beta", wantIgnored: []string{"zeta"}},
		{name: "one not created yet never displaces one in force", labelled: []metav1.Object{uncreated, newer}, inForce: "alpha", wantIgnored: []string{"aaa"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ignored := InForce(tc.labelled)
			if tc.inForce == "" {
				if got != nil {
					t.Fatalf("in force %s, want none", got.GetName())
				}
				return
			}
			if got == nil || got.GetName() != tc.inForce {
				t.Fatalf("in force %v, want %s", got, tc.inForce)
			}
			if gotIgnored := names(ignored); !slices.Equal(gotIgnored, tc.wantIgnored) {
				t.Errorf("ignored %q, want %q", gotIgnored, tc.wantIgnored)
			}
		})
	}
}
