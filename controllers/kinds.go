package controllers

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/kubegate/istio-gateway-operator/pkg/render"
	"github.com/kubegate/istio-gateway-operator/pkg/ssa"
)

// generatedKind is everything the operator needs to know about one kind it generates. The
// registry of them (generatedKinds) drives the rendered output list, the cache, the watches,
// the owned-fields extraction and the tests: adding a kind is one entry here.
type generatedKind struct {
	name string
	// newObject returns an empty typed object of the kind.
	newObject func() client.Object
	// rendered picks the kind's object out of the rendering; nil means it must not exist.
	rendered func(*render.Resources) client.Object
	// applyConfiguration converts a rendered object into its apply configuration.
	applyConfiguration func(obj any) (runtime.ApplyConfiguration, error)
	// owned extracts the fields a field manager owns on a live object, as the apply
	// configuration of the kind: what the operator applied last, minus anything another
	// manager took over.
	owned func(live client.Object, fieldManager string) (any, error)
	// statusMatters is set for a kind whose status the Gateway's status reports (the
	// Service's load balancer address): its every change is watched, not only its spec's.
	statusMatters bool
}

// kindOf builds the registry entry of the kind T, whose apply configuration is AC.
func kindOf[T any, PT interface {
	*T
	client.Object
}, AC any, PAC interface {
	*AC
	runtime.ApplyConfiguration
}](name string, rendered func(*render.Resources) PT, extract func(PT, string) (PAC, error)) generatedKind {
	return generatedKind{
		name:      name,
		newObject: func() client.Object { return PT(new(T)) },
		rendered: func(res *render.Resources) client.Object {
			if obj := rendered(res); obj != nil {
				return obj
			}
			return nil
		},
		applyConfiguration: func(obj any) (runtime.ApplyConfiguration, error) {
			ac, err := ssa.ApplyConfiguration[AC](obj)
			if err != nil {
				return nil, err
			}
			return PAC(ac), nil
		},
		owned: func(live client.Object, fieldManager string) (any, error) {
			return extract(live.(PT), fieldManager)
		},
	}
}

var (
	serviceAccountKind = kindOf[corev1.ServiceAccount, *corev1.ServiceAccount, corev1ac.ServiceAccountApplyConfiguration](
		"ServiceAccount", func(r *render.Resources) *corev1.ServiceAccount { return r.ServiceAccount }, corev1ac.ExtractServiceAccount)
	deploymentKind = kindOf[appsv1.Deployment, *appsv1.Deployment, appsv1ac.DeploymentApplyConfiguration](
		"Deployment", func(r *render.Resources) *appsv1.Deployment { return r.Deployment }, appsv1ac.ExtractDeployment)
	serviceKind = withStatus(kindOf[corev1.Service, *corev1.Service, corev1ac.ServiceApplyConfiguration](
		"Service", func(r *render.Resources) *corev1.Service { return r.Service }, corev1ac.ExtractService))
	hpaKind = kindOf[autoscalingv2.HorizontalPodAutoscaler, *autoscalingv2.HorizontalPodAutoscaler, autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration](
		"HorizontalPodAutoscaler", func(r *render.Resources) *autoscalingv2.HorizontalPodAutoscaler { return r.HorizontalPodAutoscaler },
		autoscalingv2ac.ExtractHorizontalPodAutoscaler)
	pdbKind = kindOf[policyv1.PodDisruptionBudget, *policyv1.PodDisruptionBudget, policyv1ac.PodDisruptionBudgetApplyConfiguration](
		"PodDisruptionBudget", func(r *render.Resources) *policyv1.PodDisruptionBudget { return r.PodDisruptionBudget },
		policyv1ac.ExtractPodDisruptionBudget)

	// generatedKinds in the order they are applied: the ServiceAccount before the pods that
	// use it, the Deployment before what scales and guards it.
	generatedKinds = []generatedKind{serviceAccountKind, deploymentKind, serviceKind, hpaKind, pdbKind}
)

func withStatus(k generatedKind) generatedKind {
	k.statusMatters = true
	return k
}

// GeneratedObjects are empty objects of every kind the operator generates, for the cache
// options and for tests that list what it generated.
func GeneratedObjects() []client.Object {
	out := make([]client.Object, 0, len(generatedKinds))
	for _, k := range generatedKinds {
		out = append(out, k.newObject())
	}
	return out
}

// desiredObject pairs a kind with its rendered object; a nil object must not exist.
type desiredObject struct {
	kind   generatedKind
	object client.Object
}

// applyRequest is the object's apply configuration and its JSON, the body an apply sends:
// the reconciler digests it and `manager render` prints it, from this one conversion.
func (d desiredObject) applyRequest() (runtime.ApplyConfiguration, []byte, error) {
	ac, err := d.kind.applyConfiguration(d.object)
	if err != nil {
		return nil, nil, fmt.Errorf("converting to its apply configuration: %w", err)
	}
	body, err := json.Marshal(ac)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding its apply configuration: %w", err)
	}
	return ac, body, nil
}

func desiredObjects(res *render.Resources) []desiredObject {
	out := make([]desiredObject, 0, len(generatedKinds))
	for _, k := range generatedKinds {
		out = append(out, desiredObject{k, k.rendered(res)})
	}
	return out
}

// GeneratedListKinds are the list kinds of every generated kind, by kind name, for the
// suites and the benchmark that list what the operator generated (as metadata).
func GeneratedListKinds(scheme *runtime.Scheme) (map[string]schema.GroupVersionKind, error) {
	out := make(map[string]schema.GroupVersionKind, len(generatedKinds))
	for _, k := range generatedKinds {
		gvk, err := apiutil.GVKForObject(k.newObject(), scheme)
		if err != nil {
			return nil, fmt.Errorf("the list kind of %s: %w", k.name, err)
		}
		out[k.name] = gvk.GroupVersion().WithKind(gvk.Kind + "List")
	}
	return out, nil
}
