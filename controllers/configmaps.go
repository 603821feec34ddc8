package controllers

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/customize"
	"github.com/kubegate/istio-gateway-operator/pkg/sources"
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

// resolveClassDefaults finds the class-level ConfigMap: the one the GatewayClass names in
// spec.parametersRef, otherwise the one in force of those labelled for the class in the
// system namespace.
func resolveClassDefaults(ctx context.Context, metadata client.Reader, gc *gatewayv1.GatewayClass, systemNamespace string) (sources.ClassDefaults, error) {
	if gc.Spec.ParametersRef != nil {
		ref := sources.ClassParameters(gc)
		return sources.ClassDefaults{Ref: ref.ConfigMap, Problem: ref.Problem}, nil
	}
	labelled, err := labelledClassDefaults(ctx, metadata, gc.Name, systemNamespace)
	if err != nil {
		return sources.ClassDefaults{}, err
	}
	inForce, ignored := sources.InForce(labelled)
	if inForce == nil {
		return sources.ClassDefaults{}, nil
	}
	out := sources.ClassDefaults{Ref: &types.NamespacedName{Namespace: inForce.GetNamespace(), Name: inForce.GetName()}}
	for _, cm := range ignored {
		out.Ignored = append(out.Ignored, types.NamespacedName{Namespace: cm.GetNamespace(), Name: cm.GetName()})
	}
	return out, nil
}

// labelledClassDefaults lists, from the metadata cache, the ConfigMaps labelled as a
// class's defaults in a namespace.
func labelledClassDefaults(ctx context.Context, metadata client.Reader, className, namespace string) ([]metav1.Object, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(configMapGVK.GroupVersion().WithKind("ConfigMapList"))
	if err := metadata.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{v1alpha1.DefaultsForClassLabel: className}); err != nil {
		return nil, fmt.Errorf("listing class defaults ConfigMaps for GatewayClass %s: %w", className, err)
	}
	out := make([]metav1.Object, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
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
