package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// OfflineVerdict is what the admission webhooks would answer for one object of a set of
// manifests: `manager validate` prints it, so a pull request learns what a cluster would
// refuse, in the webhook's own words.
type OfflineVerdict struct {
	// Object names it as "Kind namespace/name".
	Object string
	// Allowed is false when the webhook would refuse it; Message then says why.
	Allowed  bool
	Message  string
	Warnings []string
}

// ValidateOffline judges Gateways and ConfigMaps from manifests as the webhooks do, with
// the manifests as the whole cluster: the webhooks' own handlers run against an in-memory
// client holding them. Like the operator, it assumes the default GatewayClass and its
// class defaults ConfigMap exist when the manifests do not define them.
func ValidateOffline(ctx context.Context, scheme *runtime.Scheme, objects []client.Object, opts Options) ([]OfflineVerdict, error) {
	if opts.GatewayClassName == "" {
		opts.GatewayClassName = v1alpha1.DefaultGatewayClassName
	}
	if opts.SystemNamespace == "" {
		opts.SystemNamespace = v1alpha1.DefaultSystemNamespace
	}
	seen := map[string]bool{}
	for _, o := range objects {
		if id := describeObject(o); seen[id] {
			return nil, fmt.Errorf("%s is defined twice in the manifests", id)
		} else {
			seen[id] = true
		}
	}
	world := slices.Clone(objects)
	has := func(kind, namespace, name string) bool {
		return slices.ContainsFunc(world, func(o client.Object) bool {
			return manifestKind(o) == kind && o.GetNamespace() == namespace && o.GetName() == name
		})
	}
	if !has("GatewayClass", "", opts.GatewayClassName) {
		world = append(world, &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: opts.GatewayClassName},
			Spec: gatewayv1.GatewayClassSpec{ControllerName: v1alpha1.ControllerName}})
	}
	if !has("ConfigMap", opts.SystemNamespace, v1alpha1.ClassDefaultsConfigMapName(opts.GatewayClassName)) {
		world = append(world, defaultClassConfigMap(opts.GatewayClassName, opts.SystemNamespace))
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(world...).
		WithIndex(&gatewayv1.Gateway{}, GatewayClassIndex, gatewayClassKey).
		WithIndex(&gatewayv1.Gateway{}, GatewayParametersIndex, gatewayParametersKey).
		Build()
	decoder := admission.NewDecoder(scheme)
	configMaps := &ConfigMapValidator{Cache: reader, APIReader: reader, Options: opts, decoder: decoder}
	gateways := &GatewayValidator{Cache: reader, APIReader: reader, Options: opts, decoder: decoder}

	var out []OfflineVerdict
	for _, obj := range objects {
		var handler admission.Handler
		switch obj.(type) {
		case *corev1.ConfigMap:
			handler = configMaps
		case *gatewayv1.Gateway:
			handler = gateways
		default:
			continue
		}
		raw, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", describeObject(obj), err)
		}
		res := handler.Handle(ctx, admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Operation: admissionv1.Create, Namespace: obj.GetNamespace(), Name: obj.GetName(),
			Object: runtime.RawExtension{Raw: raw},
		}})
		verdict := OfflineVerdict{Object: describeObject(obj), Allowed: res.Allowed, Warnings: res.Warnings}
		if res.Result != nil {
			verdict.Message = res.Result.Message
		}
		out = append(out, verdict)
	}
	return out, nil
}

func manifestKind(o client.Object) string {
	switch o.(type) {
	case *corev1.ConfigMap:
		return "ConfigMap"
	case *gatewayv1.Gateway:
		return "Gateway"
	case *gatewayv1.GatewayClass:
		return "GatewayClass"
	case *corev1.Namespace:
		return "Namespace"
	}
	return fmt.Sprintf("%T", o)
}

func describeObject(o client.Object) string {
	if o.GetNamespace() == "" {
		return manifestKind(o) + " " + o.GetName()
	}
	return manifestKind(o) + " " + o.GetNamespace() + "/" + o.GetName()
}

// String reads as `manager validate` prints a verdict.
func (v OfflineVerdict) String() string {
	var b strings.Builder
	if v.Allowed {
		fmt.Fprintf(&b, "%s: admitted\n", v.Object)
	} else {
		fmt.Fprintf(&b, "%s: refused: %s\n", v.Object, v.Message)
	}
	for _, w := range v.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", w)
	}
	return b.String()
}
