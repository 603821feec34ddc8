// Package sources holds the rules that say which ConfigMaps customize a Gateway: the
// references a GatewayClass and a Gateway may make, which ConfigMaps are a class's
// defaults, and which of several labelled ones is in force. The reconciler, its watches,
// its cache index and the admission webhook all ask here, so that they never disagree
// about where a Gateway's customizations come from.
package sources

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// IsConfigMapRef says whether a parametersRef's group and kind name a core ConfigMap, the
// only kind of parameters the operator reads.
func IsConfigMapRef(group gatewayv1.Group, kind gatewayv1.Kind) bool {
	return group == "" && kind == "ConfigMap"
}

// Ref is the outcome of reading one parametersRef.
type Ref struct {
	// ConfigMap is the ConfigMap referenced, nil when there is no reference or it is unusable.
	ConfigMap *types.NamespacedName
	// Problem says why a reference that exists cannot be used; Gateway API reports it as
	// Accepted=False with reason InvalidParameters.
	Problem string
}

// GatewayParameters reads a Gateway's spec.infrastructure.parametersRef, which names a
// ConfigMap in the Gateway's own namespace.
func GatewayParameters(gw *gatewayv1.Gateway) Ref {
	if gw.Spec.Infrastructure == nil || gw.Spec.Infrastructure.ParametersRef == nil {
		return Ref{}
	}
	ref := gw.Spec.Infrastructure.ParametersRef
	if !IsConfigMapRef(ref.Group, ref.Kind) {
		return Ref{Problem: unsupported(ref.Group, ref.Kind, ref.Name)}
	}
	return Ref{ConfigMap: &types.NamespacedName{Namespace: gw.Namespace, Name: ref.Name}}
}

// ClassParameters reads a GatewayClass's spec.parametersRef, which must name the
// ConfigMap's namespace: a GatewayClass has none of its own.
func ClassParameters(gc *gatewayv1.GatewayClass) Ref {
	ref := gc.Spec.ParametersRef
	if ref == nil {
		return Ref{}
	}
	if !IsConfigMapRef(ref.Group, ref.Kind) {
		return Ref{Problem: fmt.Sprintf("GatewayClass %s %s", gc.Name, unsupported(ref.Group, ref.Kind, ref.Name))}
	}
	if ref.Namespace == nil || *ref.Namespace == "" {
		return Ref{Problem: fmt.Sprintf("GatewayClass %s parametersRef ConfigMap %s has no namespace", gc.Name, ref.Name)}
	}
	return Ref{ConfigMap: &types.NamespacedName{Namespace: string(*ref.Namespace), Name: ref.Name}}
}

func unsupported(group gatewayv1.Group, kind gatewayv1.Kind, name string) string {
	return fmt.Sprintf("parametersRef %s/%s %s is not supported; only group \"\" kind ConfigMap is", group, kind, name)
}

// ClassDefaults is the resolution of a class's defaults ConfigMap.
type ClassDefaults struct {
	// Ref is the ConfigMap in force, nil when the class has none.
	Ref *types.NamespacedName
	// Ignored are further ConfigMaps labelled for the class, which lose to Ref.
	Ignored []types.NamespacedName
	// Problem is set when the class's parametersRef cannot be used.
	Problem string
}

// IsClassConfigMapOf says whether cm is class-level customization of gc: the ConfigMap the
// class's parametersRef names or, when it names none, one labelled for the class in the
// system namespace.
func IsClassConfigMapOf(gc *gatewayv1.GatewayClass, cm metav1.Object, systemNamespace string) bool {
	if gc.Spec.ParametersRef != nil {
		ref := ClassParameters(gc).ConfigMap
		return ref != nil && ref.Name == cm.GetName() && ref.Namespace == cm.GetNamespace()
	}
	return IsLabelledDefaults(cm, gc.Name, systemNamespace)
}

// IsLabelledDefaults says whether cm is labelled as the defaults of the class, where the
// label counts: in the system namespace.
func IsLabelledDefaults(cm metav1.Object, className, systemNamespace string) bool {
	return cm.GetNamespace() == systemNamespace && cm.GetLabels()[v1alpha1.DefaultsForClassLabel] == className
}

// Precedes orders ConfigMaps labelled for the same class: the oldest is in force, then
// the first by name; one not created yet (an admission request's) comes after all others,
// so a new ConfigMap never displaces the one in force.
func Precedes(a, b metav1.Object) bool {
	return compare(a, b) < 0
}

func compare(a, b metav1.Object) int {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	switch {
	case ta.IsZero() != tb.IsZero():
		if ta.IsZero() {
			return 1
		}
		return -1
	case !ta.Equal(&tb):
		if ta.Before(&tb) {
			return -1
		}
		return 1
	}
	return strings.Compare(a.GetName(), b.GetName())
}

// InForce picks, of the ConfigMaps labelled for one class, the one in force (nil when
// there are none) and the rest, which are ignored, in order.
func InForce(labelled []metav1.Object) (inForce metav1.Object, ignored []metav1.Object) {
	if len(labelled) == 0 {
		return nil, nil
	}
	sorted := slices.Clone(labelled)
	slices.SortStableFunc(sorted, compare)
	return sorted[0], sorted[1:]
}
