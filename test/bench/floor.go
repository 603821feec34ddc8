package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
)

// floorNamespace holds the raw write rate's objects, which no served Gateway owns.
const floorNamespace = "bench-floor"

// writesPerGateway is what converging one Gateway takes at the least: an apply of each of
// the five generated objects and one status write.
const writesPerGateway = 6

// rawWriteRate measures the API server's write floor on this machine, with no operator
// running: the benchmark's own clients send, for units Gateways, exactly the requests the
// operator would (the server-side apply bodies `manager render` prints, then a status
// apply), and the rate is writes per second. A Gateway converged at this rate would take
// writesPerGateway / rate; N Gateways, N times that.
func rawWriteRate(ctx context.Context, c client.Client, classDefaults *corev1.ConfigMap, clients, units int) (float64, error) {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: floorNamespace}}); err != nil {
		return 0, err
	}
	// The Gateways exist first (their UIDs own the objects), of a class no one serves, so
	// the operator started later never takes them.
	gateways := make([]*gatewayv1.Gateway, units)
	if err := parallel(clients, units, func(i int) error {
		gw := benchGateway(floorNamespace, fmt.Sprintf("floor-%04d", i))
		gw.Spec.GatewayClassName = "bench-floor"
		gateways[i] = gw
		return c.Create(ctx, gw)
	}); err != nil {
		return 0, err
	}
	inputs := []client.Object{classDefaults.DeepCopy()}
	for _, gw := range gateways {
		rendered := gw.DeepCopy()
		rendered.Spec.GatewayClassName = "istio"
		inputs = append(inputs, rendered)
	}
	renderings, err := controllers.RenderOffline(ctx, c.Scheme(), inputs, controllers.Options{ProxyImage: benchProxyImage})
	if err != nil {
		return 0, err
	}
	if len(renderings) != units {
		return 0, fmt.Errorf("rendered %d Gateways of %d", len(renderings), units)
	}
	bodies := make([][][]byte, units)
	for i, r := range renderings {
		if r.Problem != "" {
			return 0, fmt.Errorf("rendering %s: %s", r.Gateway, r.Problem)
		}
		for _, body := range r.Objects {
			unlabelled, err := withoutManagedLabel(body)
			if err != nil {
				return 0, err
			}
			bodies[i] = append(bodies[i], unlabelled)
		}
	}
	status, err := json.Marshal(map[string]any{
		"apiVersion": gatewayv1.GroupVersion.String(), "kind": "Gateway",
		"status": map[string]any{"conditions": []any{map[string]any{
			"type": "Programmed", "status": "True", "reason": "Programmed", "message": "bench floor",
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339), "observedGeneration": 1,
		}}},
	})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := parallel(clients, units, func(i int) error {
		for _, body := range bodies[i] {
			target := &unstructured.Unstructured{}
			if err := json.Unmarshal(body, &target.Object); err != nil {
				return err
			}
			if err := c.Patch(ctx, target, client.RawPatch(types.ApplyPatchType, body), client.FieldOwner("bench-floor"), client.ForceOwnership); err != nil {
				return fmt.Errorf("applying %s %s: %w", target.GetKind(), target.GetName(), err)
			}
		}
		return c.Status().Patch(ctx, gateways[i], client.RawPatch(types.ApplyPatchType, status), client.FieldOwner("bench-floor"), client.ForceOwnership)
	}); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	writes := 0
	for _, b := range bodies {
		writes += len(b) + 1
	}
	return float64(writes) / elapsed.Seconds(), nil
}

// withoutManagedLabel keeps the floor's objects out of the operator's cache, which holds
// only the objects labelled as its own.
func withoutManagedLabel(body []byte) ([]byte, error) {
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, err
	}
	if meta, ok := obj["metadata"].(map[string]any); ok {
		if labels, ok := meta["labels"].(map[string]any); ok {
			delete(labels, v1alpha1.ManagedLabel)
		}
	}
	return json.Marshal(obj)
}
