package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/pkg/contention"
	"github.com/kubegate/istio-gateway-operator/pkg/outcome"
)

// A watch event of the operator's own earlier status write can arrive after a later write
// (under load, or after an API server restart): the Gateway is reconciled from a cache that
// lags behind the API server. The status the API server holds is what decides whether to
// write, so the late event costs a read, never a write.
func TestStatusWriteAnswersTheAPIServerNotALaggingCache(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := gatewayv1.Install(scheme); err != nil {
		t.Fatal(err)
	}
	stale := &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gw", Generation: 1},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: "istio", Listeners: []gatewayv1.Listener{
			{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType},
		}},
	}
	statusWrites := 0
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithObjects(stale.DeepCopy()).WithStatusSubresource(&gatewayv1.Gateway{}).
		WithIndex(&gatewayv1.HTTPRoute{}, HTTPRouteParentIndex, httpRouteParentKeys).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourceApply: func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
				statusWrites++
				return c.SubResource(sub).Apply(ctx, obj, opts...)
			},
		}).Build()
	r := &GatewayReconciler{Client: c, APIReader: c, Recorder: &countingRecorder{}, FieldManager: "istio-gateway-operator", statusContention: contention.New(),
		certificates: &certificateSource{metadata: c, live: c}}
	service := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.0.0.9"}}}
	programmed := func() *outcome.Result { return &outcome.Result{Service: service} }

	if err := r.writeStatus(ctx, stale.DeepCopy(), programmed()); err != nil {
		t.Fatal(err)
	}
	if statusWrites != 1 {
		t.Fatalf("first report: %d status writes, want 1", statusWrites)
	}
	written := &gatewayv1.Gateway{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(stale), written); err != nil {
		t.Fatal(err)
	}
	if got := programmedStatus(written); got != metav1.ConditionTrue {
		t.Fatalf("Programmed %q after the first report, want True", got)
	}

	// The cache still holds the Gateway as it was before the write.
	for range 3 {
		if err := r.writeStatus(ctx, stale.DeepCopy(), programmed()); err != nil {
			t.Fatal(err)
		}
	}
	if statusWrites != 1 {
		t.Errorf("reconciled from a lagging cache: %d status writes, want the first one only", statusWrites)
	}

	// What the API server holds is still answered when it differs from what is desired.
	pending := &outcome.Result{Service: &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}}
	if err := r.writeStatus(ctx, stale.DeepCopy(), pending); err != nil {
		t.Fatal(err)
	}
	if statusWrites != 2 {
		t.Errorf("a changed outcome from a lagging cache: %d status writes, want 2", statusWrites)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(stale), written); err != nil {
		t.Fatal(err)
	}
	if got := programmedStatus(written); got != metav1.ConditionFalse {
		t.Errorf("Programmed %q after the address went away, want False", got)
	}

	// Relabelled for another revision on the API server, not yet in the cache: the
	// ownership was decided on an outdated Gateway, and nothing is written.
	written.Labels = map[string]string{"istio.io/rev": "asm-1-26"}
	if err := c.Update(ctx, written); err != nil {
		t.Fatal(err)
	}
	if err := r.writeStatus(ctx, stale.DeepCopy(), programmed()); err != nil {
		t.Fatal(err)
	}
	if statusWrites != 2 {
		t.Errorf("a Gateway relabelled after the cache saw it: %d status writes, want still 2", statusWrites)
	}
}

func programmedStatus(gw *gatewayv1.Gateway) metav1.ConditionStatus {
	for _, c := range gw.Status.Conditions {
		if c.Type == string(gatewayv1.GatewayConditionProgrammed) {
			return c.Status
		}
	}
	return ""
}
