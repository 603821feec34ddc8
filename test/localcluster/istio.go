package localcluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubegate/istio-gateway-operator/pkg/meshconfig"
)

// IstioProxyHub and IstioProxyTag are the proxy image the local environments install
// their revision with (Istio 1.26, as the managed add-on's asm-1-26).
const (
	IstioProxyHub = "docker.io/istio"
	IstioProxyTag = "1.26.3"
)

// IstioRevisionConfigMaps are the ConfigMaps Istio's chart installs for a revision in its
// namespace and the operator renders the proxies from: the mesh config (trust domain, the
// proxies' default config) and the injector values (hub, tag, mesh ID, network, cluster).
// No istiod runs with them locally; they stand for an installed revision.
func IstioRevisionConfigMaps(namespace, revision string) []*corev1.ConfigMap {
	return IstioRevisionConfigMapsWithTag(namespace, revision, IstioProxyTag)
}

// IstioRevisionConfigMapsWithTag are IstioRevisionConfigMaps for a revision whose proxies
// run another image tag: an upgrade to a new minor version.
func IstioRevisionConfigMapsWithTag(namespace, revision, tag string) []*corev1.ConfigMap {
	rev := revision
	if rev == "" {
		rev = "default"
	}
	return []*corev1.ConfigMap{
		{
			ObjectMeta: metav1.ObjectMeta{Name: meshconfig.MeshConfigMapName(revision), Namespace: namespace, Labels: map[string]string{"istio.io/rev": rev}},
			Data: map[string]string{meshconfig.MeshKey: fmt.Sprintf("trustDomain: cluster.local\ndefaultConfig:\n  discoveryAddress: %s\n",
				meshconfig.DiscoveryAddress(revision, namespace))},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: meshconfig.InjectorConfigMapName(revision), Namespace: namespace, Labels: map[string]string{"istio.io/rev": rev}},
			Data: map[string]string{meshconfig.ValuesKey: fmt.Sprintf(`{"revision":%q,"global":{"hub":%q,"tag":%q,"istioNamespace":%q,"pilotCertProvider":"istiod","meshID":"","network":"","multiCluster":{"clusterName":""}}}`,
				rev, IstioProxyHub, tag, namespace)},
		},
	}
}

// InstallIstioRevision creates a revision's ConfigMaps (IstioRevisionConfigMaps); ones that
// exist are left as they are.
func InstallIstioRevision(ctx context.Context, c client.Client, namespace, revision string) error {
	return InstallIstioRevisionWithTag(ctx, c, namespace, revision, IstioProxyTag)
}

// InstallIstioRevisionWithTag is InstallIstioRevision for proxies of another image tag.
func InstallIstioRevisionWithTag(ctx context.Context, c client.Client, namespace, revision, tag string) error {
	for _, cm := range IstioRevisionConfigMapsWithTag(namespace, revision, tag) {
		if err := c.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
	return nil
}
