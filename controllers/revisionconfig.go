package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubegate/istio-gateway-operator/pkg/meshconfig"
	"github.com/kubegate/istio-gateway-operator/pkg/revision"
)

// revisionConfigSource reads what the revision's own configuration says its proxies run
// with: istiod's mesh ConfigMap and injector ConfigMap in the system namespace. Their
// contents are read when their resourceVersions change and the result is memoized, so a
// reconcile costs no request while they stay the same.
type revisionConfigSource struct {
	metadata, live client.Reader
	namespace      string
	revision       string
	// imageOverride replaces the injector values' image (--proxy-image).
	imageOverride string

	mu   sync.Mutex
	memo revisionConfig
}

// revisionConfig is one reading of the two ConfigMaps.
type revisionConfig struct {
	// read is false until the first reading.
	read                       bool
	meshVersion, valuesVersion string
	proxy                      meshconfig.Proxy
	// problem says why the proxies cannot be rendered; the user (the platform team) fixes it.
	problem string
}

// Proxy returns the revision's proxy settings, or a problem to report; err is for API
// errors, which are retried.
func (s *revisionConfigSource) Proxy(ctx context.Context) (meshconfig.Proxy, string, error) {
	meshName := types.NamespacedName{Namespace: s.namespace, Name: meshconfig.MeshConfigMapName(s.revision)}
	valuesName := types.NamespacedName{Namespace: s.namespace, Name: meshconfig.InjectorConfigMapName(s.revision)}
	meshVersion, err := s.version(ctx, meshName)
	if err != nil {
		return meshconfig.Proxy{}, "", err
	}
	valuesVersion, err := s.version(ctx, valuesName)
	if err != nil {
		return meshconfig.Proxy{}, "", err
	}
	s.mu.Lock()
	memo := s.memo
	s.mu.Unlock()
	if memo.read && memo.meshVersion == meshVersion && memo.valuesVersion == valuesVersion {
		return memo.proxy, memo.problem, nil
	}
	mesh, err := s.read(ctx, meshName, meshconfig.MeshKey, meshVersion)
	if err != nil {
		return meshconfig.Proxy{}, "", err
	}
	values, err := s.read(ctx, valuesName, meshconfig.ValuesKey, valuesVersion)
	if err != nil {
		return meshconfig.Proxy{}, "", err
	}
	next := revisionConfig{read: true, meshVersion: meshVersion, valuesVersion: valuesVersion}
	proxy, err := meshconfig.Parse(mesh, values, s.revision, s.namespace)
	switch {
	case err != nil:
		source := meshName
		if !strings.HasPrefix(err.Error(), meshconfig.MeshKey+":") {
			source = valuesName
		}
		next.problem = fmt.Sprintf("ConfigMap %s of revision %s: %v", source, revision.Name(s.revision), err)
	case s.imageOverride != "":
		proxy.Image = s.imageOverride
		next.proxy = proxy
	case valuesVersion == "":
		next.problem = fmt.Sprintf("ConfigMap %s does not exist: the proxies' image comes from revision %s's injector values; install the revision, or set --proxy-image",
			valuesName, revision.Name(s.revision))
	case proxy.Image == "":
		next.problem = fmt.Sprintf("ConfigMap %s names no proxy image (global.hub and global.tag, or global.proxy.image); fix the revision's values, or set --proxy-image", valuesName)
	default:
		next.proxy = proxy
	}
	s.mu.Lock()
	s.memo = next
	s.mu.Unlock()
	return next.proxy, next.problem, nil
}

// version is a ConfigMap's resourceVersion from the metadata cache, "" when it does not exist.
func (s *revisionConfigSource) version(ctx context.Context, key types.NamespacedName) (string, error) {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(configMapGVK)
	if err := s.metadata.Get(ctx, key, meta); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("reading ConfigMap %s: %w", key, err)
	}
	return meta.ResourceVersion, nil
}

// read returns one key of a ConfigMap that exists (version != ""), "" otherwise.
func (s *revisionConfigSource) read(ctx context.Context, key types.NamespacedName, dataKey, version string) (string, error) {
	if version == "" {
		return "", nil
	}
	cm := &corev1.ConfigMap{}
	if err := s.live.Get(ctx, key, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("reading ConfigMap %s: %w", key, err)
	}
	return cm.Data[dataKey], nil
}

// isRevisionConfigMap says whether a ConfigMap is one of the revision's own.
func (s *revisionConfigSource) isRevisionConfigMap(o client.Object) bool {
	return o.GetNamespace() == s.namespace &&
		(o.GetName() == meshconfig.MeshConfigMapName(s.revision) || o.GetName() == meshconfig.InjectorConfigMapName(s.revision))
}
