package render

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/customize"
	"github.com/kubegate/istio-gateway-operator/pkg/meshconfig"
)

// Inputs is everything the generated resources depend on.
type Inputs struct {
	Gateway *gatewayv1.Gateway
	// Revision is the control-plane revision that owns the Gateway; empty is the default one.
	Revision string
	// Proxy is what the revision's own configuration says the proxies run with (image,
	// trust domain, mesh and cluster IDs, network, proxy config); see pkg/meshconfig.
	Proxy meshconfig.Proxy
	// Layers are the customizations, lowest precedence first: class level, then Gateway level.
	Layers []*customize.Set
}

// Resources is the desired state behind one Gateway; nil means "must not exist".
type Resources struct {
	ServiceAccount          *corev1.ServiceAccount
	Deployment              *appsv1.Deployment
	Service                 *corev1.Service
	HorizontalPodAutoscaler *autoscalingv2.HorizontalPodAutoscaler
	PodDisruptionBudget     *policyv1.PodDisruptionBudget
	// Adjustments are values the operator changed from what the merged customizations
	// asked for (the HPA minReplicas floor), to be reported like dropped fields.
	Adjustments []customize.Finding
}

// Built-in defaults, the bottom layer under every customization.
const (
	DefaultMinReplicas             int32 = 2
	DefaultMaxReplicas             int32 = 5
	DefaultCPUUtilization          int32 = 80
	StatusPort                     int32 = 15021
	metricsPort                    int32 = 15020
	envoyPrometheusPort            int32 = 15090
	xdsPort                              = 15012
	proxyUID                       int64 = 1337
	tokenExpirationSeconds         int64 = 43200
	reservedGatewayAPIPrefix             = "gateway.networking.k8s.io/"
	caRootCertConfigMap                  = "istio-ca-root-cert"
	tokenAudience                        = "istio-ca"
	defaultRevisionAnnotationValue       = "default"
)

const mergedSource = "the merged class and Gateway customizations"

// Name is the name of every resource generated for a Gateway: "<gateway>-istio".
func Name(gatewayName string) string {
	return gatewayName + "-" + v1alpha1.GeneratedNameSuffix
}

// Render computes the desired resources. Its errors are the user's to fix (a merged
// customization that cannot be applied), never transient.
func Render(in Inputs) (*Resources, error) {
	gw := in.Gateway
	labels, annotations := commonMetadata(in)
	owner := ownerReference(gw)
	name := Name(gw.Name)
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name:            name,
			Namespace:       gw.Namespace,
			Labels:          maps.Clone(labels),
			Annotations:     maps.Clone(annotations),
			OwnerReferences: []metav1.OwnerReference{owner},
		}
	}

	out := &Resources{
		ServiceAccount: &corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: meta(),
		},
	}
	deployment := deployment(in, meta(), labels, annotations)
	if err := mergeLayers(in.Layers, v1alpha1.DataKeyDeployment, deployment); err != nil {
		return nil, err
	}
	service := service(in, meta())
	if err := mergeLayers(in.Layers, v1alpha1.DataKeyService, service); err != nil {
		return nil, err
	}
	if service.Spec.Type != corev1.ServiceTypeLoadBalancer {
		service.Spec.LoadBalancerIP = ""
	}
	out.Deployment, out.Service = deployment, service

	if hasKey(in.Layers, v1alpha1.DataKeyHorizontalPodAutoscaler) {
		hpa := horizontalPodAutoscaler(meta())
		if err := mergeLayers(in.Layers, v1alpha1.DataKeyHorizontalPodAutoscaler, hpa); err != nil {
			return nil, err
		}
		adjustments, err := enforceReplicaBounds(hpa)
		if err != nil {
			return nil, err
		}
		out.Adjustments = append(adjustments, replicasUnderHPA(in.Layers)...)
		out.HorizontalPodAutoscaler = hpa
		// The HPA controller owns the replica count while an HPA exists.
		out.Deployment.Spec.Replicas = nil
	}
	if hasKey(in.Layers, v1alpha1.DataKeyPodDisruptionBudget) {
		pdb := podDisruptionBudget(meta(), gw.Name)
		if err := mergeLayers(in.Layers, v1alpha1.DataKeyPodDisruptionBudget, pdb); err != nil {
			return nil, err
		}
		out.PodDisruptionBudget = pdb
	}
	return out, nil
}

// commonMetadata is what every generated object carries: the Gateway's infrastructure
// labels and annotations, then the operator's own labels, which always win.
func commonMetadata(in Inputs) (map[string]string, map[string]string) {
	labels := map[string]string{}
	annotations := map[string]string{}
	if infra := in.Gateway.Spec.Infrastructure; infra != nil {
		for k, v := range infra.Labels {
			if !strings.HasPrefix(string(k), reservedGatewayAPIPrefix) {
				labels[string(k)] = string(v)
			}
		}
		for k, v := range infra.Annotations {
			if !strings.HasPrefix(string(k), reservedGatewayAPIPrefix) {
				annotations[string(k)] = string(v)
			}
		}
	}
	labels[v1alpha1.GatewayNameLabel] = in.Gateway.Name
	labels[v1alpha1.GatewayClassNameLabel] = string(in.Gateway.Spec.GatewayClassName)
	labels[v1alpha1.ManagedLabel] = v1alpha1.ManagedLabelValue
	if in.Revision != "" {
		labels[v1alpha1.RevisionLabel] = in.Revision
	} else {
		delete(labels, v1alpha1.RevisionLabel)
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	return labels, annotations
}

func ownerReference(gw *gatewayv1.Gateway) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         gatewayv1.GroupVersion.String(),
		Kind:               "Gateway",
		Name:               gw.Name,
		UID:                gw.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

func hasKey(layers []*customize.Set, key v1alpha1.DataKey) bool {
	for _, l := range layers {
		if _, ok := l.Fragments[key]; ok {
			return true
		}
	}
	return false
}

// replicasUnderHPA reports each customization that sets the Deployment's spec.replicas
// while an HPA exists.
func replicasUnderHPA(layers []*customize.Set) []customize.Finding {
	var out []customize.Finding
	for _, l := range layers {
		if l.SetsReplicas() {
			out = append(out, customize.ReplicasUnderHPA(l.Source))
		}
	}
	return out
}

// mergeLayers applies each layer's fragment for key, lowest precedence first, as a
// strategic merge patch: lists with a merge key (containers by name) merge element by
// element, so the Gateway level wins field by field.
func mergeLayers[T any](layers []*customize.Set, key v1alpha1.DataKey, obj *T) error {
	var patches []customize.Fragment
	for _, l := range layers {
		if f, ok := l.Fragments[key]; ok && len(f) > 0 {
			patches = append(patches, f)
		}
	}
	if len(patches) == 0 {
		return nil
	}
	before := protectedMetadata(obj)
	current, err := toMap(obj)
	if err != nil {
		return err
	}
	var zero T
	for _, p := range patches {
		current, err = strategicpatch.StrategicMergeMapPatch(current, map[string]any(p), zero)
		if err != nil {
			return &customize.InvalidError{Source: mergedSource, Problems: []string{fmt.Sprintf("data.%s: %v", key, err)}}
		}
	}
	js, err := json.Marshal(current)
	if err != nil {
		return fmt.Errorf("encoding merged %s: %w", key, err)
	}
	var merged T
	if err := json.Unmarshal(js, &merged); err != nil {
		return &customize.InvalidError{Source: mergedSource, Problems: []string{fmt.Sprintf("data.%s: %v", key, err)}}
	}
	if after := protectedMetadata(&merged); !reflect.DeepEqual(before, after) {
		// The allowlist cannot let this happen; refuse rather than trust it blindly.
		return fmt.Errorf("data.%s: customizations may not change name, namespace, ownerReferences or finalizers", key)
	}
	*obj = merged
	return nil
}

func toMap(obj any) (map[string]any, error) {
	js, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", obj, err)
	}
	return m, nil
}

type identity struct {
	Name, Namespace string
	Owners          []metav1.OwnerReference
	Finalizers      []string
}

func protectedMetadata(obj any) identity {
	accessor, ok := obj.(metav1.Object)
	if !ok {
		return identity{}
	}
	return identity{accessor.GetName(), accessor.GetNamespace(), accessor.GetOwnerReferences(), accessor.GetFinalizers()}
}

// enforceReplicaBounds applies customize's replica rules to the merged HPA: a minimum
// below the floor (an unset one means 1 to Kubernetes) is raised to it and reported,
// bounds no adjustment makes usable are refused.
func enforceReplicaBounds(hpa *autoscalingv2.HorizontalPodAutoscaler) ([]customize.Finding, error) {
	check := customize.ReplicaBounds{
		Min: hpa.Spec.MinReplicas, MinRemoved: hpa.Spec.MinReplicas == nil, Max: &hpa.Spec.MaxReplicas,
	}.Check()
	if len(check.Invalid) > 0 {
		problems := make([]string, 0, len(check.Invalid))
		for _, f := range check.Invalid {
			problems = append(problems, f.String())
		}
		return nil, &customize.InvalidError{Source: mergedSource, Problems: problems}
	}
	adjustments := make([]customize.Finding, 0, len(check.Raised))
	for _, f := range check.Raised {
		f.Problem += fmt.Sprintf("; %d applied", *check.Min)
		f.Adjusted = true
		adjustments = append(adjustments, f)
	}
	hpa.Spec.MinReplicas = check.Min
	return adjustments, nil
}
