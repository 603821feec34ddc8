package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/sources"
)

// isServedClass says whether the operator answers for a GatewayClass: like Istio, it
// serves every class whose controllerName is its own, each with its own defaults.
func isServedClass(gc *gatewayv1.GatewayClass) bool {
	return gc.Spec.ControllerName == v1alpha1.ControllerName && gc.DeletionTimestamp.IsZero()
}

// servedClasses lists the GatewayClasses the operator serves, from the cache.
func servedClasses(ctx context.Context, reader client.Reader) ([]gatewayv1.GatewayClass, error) {
	list := &gatewayv1.GatewayClassList{}
	if err := reader.List(ctx, list); err != nil {
		return nil, fmt.Errorf("listing GatewayClasses: %w", err)
	}
	out := list.Items[:0]
	for _, gc := range list.Items {
		if isServedClass(&gc) {
			out = append(out, gc)
		}
	}
	return out, nil
}

// servedClass returns the named GatewayClass when the operator serves it, nil when the
// class does not exist or belongs to another controller.
func servedClass(ctx context.Context, reader client.Reader, name string) (*gatewayv1.GatewayClass, error) {
	gc := &gatewayv1.GatewayClass{}
	if err := reader.Get(ctx, types.NamespacedName{Name: name}, gc); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("reading GatewayClass %s: %w", name, err)
	}
	if !isServedClass(gc) {
		return nil, nil
	}
	return gc, nil
}

// classesUsingConfigMap names the served classes for which a ConfigMap is class-level
// customization: labelled for the class in the system namespace, or named by the class's
// spec.parametersRef.
func classesUsingConfigMap(ctx context.Context, reader client.Reader, cm client.Object, systemNamespace string) ([]string, error) {
	classes, err := servedClasses(ctx, reader)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range classes {
		if sources.IsClassConfigMapOf(&classes[i], cm, systemNamespace) {
			out = append(out, classes[i].Name)
		}
	}
	return out, nil
}
