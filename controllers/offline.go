package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/sources"
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
	reader, err := offlineCluster(scheme, objects, &opts)
	if err != nil {
		return nil, err
	}
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
			return nil, fmt.Errorf("encoding %s: %w", describeObject(scheme, obj), err)
		}
		res := handler.Handle(ctx, admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Operation: admissionv1.Create, Namespace: obj.GetNamespace(), Name: obj.GetName(),
			Object: runtime.RawExtension{Raw: raw},
		}})
		verdict := OfflineVerdict{Object: describeObject(scheme, obj), Allowed: res.Allowed, Warnings: res.Warnings}
		if res.Result != nil {
			verdict.Message = res.Result.Message
		}
		out = append(out, verdict)
	}
	return out, nil
}

// offlineCluster is an in-memory client holding the manifests (opts gets the operator's
// default class and namespace where unset), with the default
// GatewayClass and its class defaults ConfigMap added when they are missing, as the
// operator would create them.
func offlineCluster(scheme *runtime.Scheme, objects []client.Object, opts *Options) (client.Client, error) {
	if opts.GatewayClassName == "" {
		opts.GatewayClassName = v1alpha1.DefaultGatewayClassName
	}
	if opts.SystemNamespace == "" {
		opts.SystemNamespace = v1alpha1.DefaultSystemNamespace
	}
	seen := map[string]bool{}
	for _, o := range objects {
		id := describeObject(scheme, o)
		if seen[id] {
			return nil, fmt.Errorf("%s is defined twice in the manifests", id)
		}
		seen[id] = true
	}
	world := slices.Clone(objects)
	if !seen["GatewayClass "+opts.GatewayClassName] {
		world = append(world, &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: opts.GatewayClassName},
			Spec: gatewayv1.GatewayClassSpec{ControllerName: v1alpha1.ControllerName}})
	}
	if !seen["ConfigMap "+opts.SystemNamespace+"/"+v1alpha1.ClassDefaultsConfigMapName(opts.GatewayClassName)] {
		world = append(world, defaultClassConfigMap(opts.GatewayClassName, opts.SystemNamespace))
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(world...).
		WithIndex(&gatewayv1.Gateway{}, GatewayClassIndex, gatewayClassKey).
		WithIndex(&gatewayv1.Gateway{}, GatewayParametersIndex, gatewayParametersKey).
		Build(), nil
}

// describeObject names an object as "Kind namespace/name", its kind from the scheme.
func describeObject(scheme *runtime.Scheme, o client.Object) string {
	kind := fmt.Sprintf("%T", o)
	if gvk, err := apiutil.GVKForObject(o, scheme); err == nil {
		kind = gvk.Kind
	}
	if o.GetNamespace() == "" {
		return kind + " " + o.GetName()
	}
	return kind + " " + o.GetNamespace() + "/" + o.GetName()
}

// OfflineRendering is what the reconciler would apply for one Gateway of a set of
// manifests: `manager render` prints it, so a pull request shows the generated objects.
type OfflineRendering struct {
	// Gateway names it as "namespace/name".
	Gateway string
	// Objects are the apply requests' bodies, exactly as the reconciler sends them, in the
	// order it applies them; none when Problem stops the rendering.
	Objects [][]byte
	// Findings name what was dropped or adjusted, as the Gateway's status would.
	Findings []string
	// Problem is the reason nothing would be applied (for example InvalidParameters).
	Problem string
}

// RenderOffline renders every Gateway of a served class in the manifests as the reconciler
// does, with the manifests as the whole cluster (and, like ValidateOffline, the default
// class and its defaults assumed). The revision's proxy settings come from its mesh and
// injector ConfigMaps in the manifests, or the image from Options.ProxyImage.
func RenderOffline(ctx context.Context, scheme *runtime.Scheme, objects []client.Object, opts Options) ([]OfflineRendering, error) {
	reader, err := offlineCluster(scheme, objects, &opts)
	if err != nil {
		return nil, err
	}
	r := &GatewayReconciler{Client: reader, APIReader: reader, Options: opts, FieldManager: v1alpha1.FieldManagerFor(opts.Revision),
		configMaps: newConfigMapSource(reader, reader),
		revisionConfig: &revisionConfigSource{metadata: reader, live: reader,
			namespace: opts.SystemNamespace, revision: opts.Revision, imageOverride: opts.ProxyImage}}
	var out []OfflineRendering
	for _, obj := range objects {
		gw, ok := obj.(*gatewayv1.Gateway)
		if !ok {
			continue
		}
		gc, err := servedClass(ctx, reader, string(gw.Spec.GatewayClassName))
		if err != nil {
			return nil, err
		}
		if gc == nil {
			continue
		}
		res, desired, err := r.desired(ctx, gw, gc)
		if err != nil {
			return nil, err
		}
		rendering := OfflineRendering{Gateway: gw.Namespace + "/" + gw.Name}
		for _, f := range res.Findings {
			rendering.Findings = append(rendering.Findings, f.Describe())
		}
		if desired == nil {
			rendering.Problem = res.Message
			out = append(out, rendering)
			continue
		}
		for _, d := range desiredObjects(desired) {
			if d.object == nil {
				continue
			}
			_, body, err := d.applyRequest()
			if err != nil {
				return nil, fmt.Errorf("%s of Gateway %s: %w", d.kind.name, rendering.Gateway, err)
			}
			rendering.Objects = append(rendering.Objects, body)
		}
		out = append(out, rendering)
	}
	return out, nil
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

// ClusterInputs is the cluster as the changes would leave it, read as the reconciler and
// the webhooks read it for the Gateways of namespace (every namespace if empty): the
// GatewayClasses, the Gateways, the Namespaces (for the policy's tiers), the ConfigMaps of
// the system namespace (class defaults, the revisions' mesh and injector configuration),
// with the changes' objects in place of the cluster's of the same kind and name, and then
// every ConfigMap a class or a Gateway of the result names, the changes' own included.
// `manager render --from-cluster` and `manager validate --from-cluster` judge it.
func ClusterInputs(ctx context.Context, reader client.Reader, scheme *runtime.Scheme, opts Options, namespace string, changes []client.Object) ([]client.Object, error) {
	var classes gatewayv1.GatewayClassList
	if err := reader.List(ctx, &classes); err != nil {
		return nil, fmt.Errorf("listing GatewayClasses: %w", err)
	}
	var gateways gatewayv1.GatewayList
	if err := reader.List(ctx, &gateways, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing Gateways: %w", err)
	}
	var namespaces corev1.NamespaceList
	if err := reader.List(ctx, &namespaces); err != nil {
		return nil, fmt.Errorf("listing Namespaces: %w", err)
	}
	var system corev1.ConfigMapList
	if err := reader.List(ctx, &system, client.InNamespace(opts.SystemNamespace)); err != nil {
		return nil, fmt.Errorf("listing the ConfigMaps of %s: %w", opts.SystemNamespace, err)
	}
	var live []client.Object
	for i := range system.Items {
		live = append(live, &system.Items[i])
	}
	for i := range classes.Items {
		live = append(live, &classes.Items[i])
	}
	for i := range gateways.Items {
		live = append(live, &gateways.Items[i])
	}
	for i := range namespaces.Items {
		live = append(live, &namespaces.Items[i])
	}
	world := overlay(scheme, live, changes)
	held := map[types.NamespacedName]bool{}
	var refs []sources.Ref
	for _, o := range world {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			held[client.ObjectKeyFromObject(o)] = true
		case *gatewayv1.GatewayClass:
			refs = append(refs, sources.ClassParameters(o))
		case *gatewayv1.Gateway:
			refs = append(refs, sources.GatewayParameters(o))
		}
	}
	for _, ref := range refs {
		if ref.ConfigMap == nil || held[*ref.ConfigMap] {
			continue
		}
		held[*ref.ConfigMap] = true
		cm := &corev1.ConfigMap{}
		if err := reader.Get(ctx, *ref.ConfigMap, cm); apierrors.IsNotFound(err) {
			continue // the reconciler reports it missing, and so does render
		} else if err != nil {
			return nil, fmt.Errorf("reading ConfigMap %s: %w", ref.ConfigMap, err)
		}
		world = append(world, cm)
	}
	for _, o := range world {
		// The in-memory client refuses to hold objects that claim a resourceVersion.
		o.SetResourceVersion("")
		o.SetManagedFields(nil)
	}
	return world, nil
}

// overlay is base with every object of changes in place of the base object of the same
// kind, namespace and name, and the others added: the cluster as a change would leave it.
func overlay(scheme *runtime.Scheme, base, changes []client.Object) []client.Object {
	changed := map[string]bool{}
	for _, o := range changes {
		changed[describeObject(scheme, o)] = true
	}
	var out []client.Object
	for _, o := range base {
		if !changed[describeObject(scheme, o)] {
			out = append(out, o)
		}
	}
	return append(out, changes...)
}
