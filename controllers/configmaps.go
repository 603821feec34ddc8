package controllers

import (
	"context"
	"fmt"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/customize"
)

var configMapGVK = corev1.SchemeGroupVersion.WithKind("ConfigMap")

// missingParametersError says a referenced ConfigMap does not exist: the user's to fix,
// and resolved by the ConfigMap's creation event rather than by retrying.
type missingParametersError struct{ ref types.NamespacedName }

func (e *missingParametersError) Error() string {
	return fmt.Sprintf("ConfigMap %s does not exist", e.ref)
}

// configMapSource reads customization ConfigMaps without caching every ConfigMap in the
// cluster: the cache holds only their metadata, and the parsed content of each referenced
// ConfigMap is memoized by resourceVersion, so a ConfigMap is fetched once per change.
type configMapSource struct {
	metadata client.Reader
	live     client.Reader

	mu   sync.Mutex
	memo map[types.NamespacedName]parsedConfigMap
}

type parsedConfigMap struct {
	resourceVersion string
	set             *customize.Set
	err             error
}

func newConfigMapSource(metadata, live client.Reader) *configMapSource {
	return &configMapSource{metadata: metadata, live: live, memo: map[types.NamespacedName]parsedConfigMap{}}
}

// Load returns the parsed customizations of one ConfigMap; a missing ConfigMap is a
// *missingParametersError and a malformed one a *customize.InvalidError.
func (s *configMapSource) Load(ctx context.Context, key types.NamespacedName) (*customize.Set, error) {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(configMapGVK)
	if err := s.metadata.Get(ctx, key, meta); err != nil {
		if apierrors.IsNotFound(err) {
			s.forget(key)
			return nil, &missingParametersError{ref: key}
		}
		return nil, fmt.Errorf("reading ConfigMap %s: %w", key, err)
	}
	s.mu.Lock()
	cached, ok := s.memo[key]
	s.mu.Unlock()
	if ok && cached.resourceVersion == meta.ResourceVersion {
		return cached.set, cached.err
	}
	cm := &corev1.ConfigMap{}
	if err := s.live.Get(ctx, key, cm); err != nil {
		if apierrors.IsNotFound(err) {
			s.forget(key)
			return nil, &missingParametersError{ref: key}
		}
		return nil, fmt.Errorf("reading ConfigMap %s: %w", key, err)
	}
	set, err := customize.Parse(key.String(), cm.Data)
	s.mu.Lock()
	s.memo[key] = parsedConfigMap{resourceVersion: cm.ResourceVersion, set: set, err: err}
	s.mu.Unlock()
	return set, err
}

func (s *configMapSource) forget(key types.NamespacedName) {
	s.mu.Lock()
	delete(s.memo, key)
	s.mu.Unlock()
}

// classDefaults is the resolution of a class's defaults ConfigMap.
type classDefaults struct {
	// Ref is the ConfigMap in force, nil when the class has none.
	Ref *types.NamespacedName
	// Ignored are further ConfigMaps labelled for the class, which lose to Ref.
	Ignored []types.NamespacedName
	// Problem is set when the class's parametersRef cannot be used.
	Problem string
}

// resolveClassDefaults finds the class-level ConfigMap: the one the GatewayClass names in
// spec.parametersRef, otherwise the oldest (then first by name) labelled for the class in
// the system namespace.
func resolveClassDefaults(ctx context.Context, metadata client.Reader, gc *gatewayv1.GatewayClass, systemNamespace string) (classDefaults, error) {
	if ref := gc.Spec.ParametersRef; ref != nil {
		if !isConfigMapRef(ref.Group, ref.Kind) {
			return classDefaults{Problem: fmt.Sprintf("GatewayClass %s parametersRef %s/%s %s is not supported; only group \"\" kind ConfigMap is", gc.Name, ref.Group, ref.Kind, ref.Name)}, nil
		}
		if ref.Namespace == nil || *ref.Namespace == "" {
			return classDefaults{Problem: fmt.Sprintf("GatewayClass %s parametersRef ConfigMap %s has no namespace", gc.Name, ref.Name)}, nil
		}
		return classDefaults{Ref: &types.NamespacedName{Namespace: string(*ref.Namespace), Name: ref.Name}}, nil
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(configMapGVK.GroupVersion().WithKind("ConfigMapList"))
	if err := metadata.List(ctx, list, client.InNamespace(systemNamespace), client.MatchingLabels{v1alpha1.DefaultsForClassLabel: gc.Name}); err != nil {
		return classDefaults{}, fmt.Errorf("listing class defaults ConfigMaps for GatewayClass %s: %w", gc.Name, err)
	}
	if len(list.Items) == 0 {
		return classDefaults{}, nil
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i].CreationTimestamp, items[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return items[i].Name < items[j].Name
	})
	out := classDefaults{Ref: &types.NamespacedName{Namespace: items[0].Namespace, Name: items[0].Name}}
	for _, cm := range items[1:] {
		out.Ignored = append(out.Ignored, types.NamespacedName{Namespace: cm.Namespace, Name: cm.Name})
	}
	return out, nil
}

// defaultClassConfigMap is the class defaults ConfigMap the managed add-on installs:
// HPA 2 to 5 replicas and a PDB keeping one pod available.
func defaultClassConfigMap(className, namespace string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      v1alpha1.ClassDefaultsConfigMapName(className),
			Namespace: namespace,
			Labels:    map[string]string{v1alpha1.DefaultsForClassLabel: className},
		},
		Data: map[string]string{
			string(v1alpha1.DataKeyHorizontalPodAutoscaler): "spec:\n  minReplicas: 2\n  maxReplicas: 5\n",
			string(v1alpha1.DataKeyPodDisruptionBudget):     "spec:\n  minAvailable: 1\n",
		},
	}
}
