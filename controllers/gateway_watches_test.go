package controllers

import (
	"context"
	"reflect"
	"sort"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestHTTPRouteParentKeys(t *testing.T) {
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "apps"},
		Spec: gatewayv1.HTTPRouteSpec{CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{
			{Name: "local"},
			{Name: "shared", Namespace: ptr.To(gatewayv1.Namespace("infra")), SectionName: ptr.To(gatewayv1.SectionName("http"))},
			{Name: "svc", Kind: ptr.To(gatewayv1.Kind("Service")), Group: ptr.To(gatewayv1.Group(""))},
			{Name: "mesh", Group: ptr.To(gatewayv1.Group("networking.istio.io")), Kind: ptr.To(gatewayv1.Kind("Gateway"))},
		}}},
	}
	want := []string{"apps/local", "infra/shared"}
	if got := httpRouteParentKeys(route); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	reqs := gatewaysOfRoute(context.Background(), route)
	if len(reqs) != 2 || reqs[1].Namespace != "infra" || reqs[1].Name != "shared" {
		t.Fatalf("requests %v", reqs)
	}
}

func TestGatewayParametersKey(t *testing.T) {
	gw := func(infra *gatewayv1.GatewayInfrastructure) *gatewayv1.Gateway {
		return &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns"}, Spec: gatewayv1.GatewaySpec{Infrastructure: infra}}
	}
	cases := []struct {
		name string
		gw   *gatewayv1.Gateway
		want []string
	}{
		{"no infrastructure", gw(nil), nil},
		{"no parametersRef", gw(&gatewayv1.GatewayInfrastructure{}), nil},
		{"a ConfigMap in the Gateway's namespace", gw(&gatewayv1.GatewayInfrastructure{ParametersRef: &gatewayv1.LocalParametersReference{Kind: "ConfigMap", Name: "opts"}}), []string{"ns/opts"}},
		{"another kind is not indexed", gw(&gatewayv1.GatewayInfrastructure{ParametersRef: &gatewayv1.LocalParametersReference{Group: "x.io", Kind: "Config", Name: "opts"}}), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := gatewayParametersKey(tc.gw); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("key %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGatewaysSelectingNamespacesIncludesTheNamespacesOwnGateways(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := gatewayv1.Install(scheme); err != nil {
		t.Fatal(err)
	}
	selector := gatewayv1.NamespacesFromSelector
	selecting := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"}, Spec: gatewayv1.GatewaySpec{
		Listeners: []gatewayv1.Listener{{Name: "http", AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: &selector}}}}}}
	own := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "gw"}}
	unrelated := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "gw"}}
	r := &GatewayReconciler{Client: fake.NewClientBuilder().WithScheme(scheme).WithObjects(selecting, own, unrelated).Build()}
	ns := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	var got []string
	for _, req := range r.gatewaysSelectingNamespaces(context.Background(), ns) {
		got = append(got, req.String())
	}
	sort.Strings(got)
	if want := []string{"infra/shared", "team-a/gw"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("requests %v, want %v: the selecting Gateway and the namespace's own (its policy tier)", got, want)
	}
}
