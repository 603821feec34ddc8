// Package controllers wires the operator's reconcilers: what they watch, what they read and
// write, and the status they report. The decisions themselves live in pkg/.
package controllers

import (
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// DefaultMaxConcurrentReconciles lets a few Gateways converge at once without crowding a
// small control plane.
const DefaultMaxConcurrentReconciles = 4

// StatusMode says who writes which part of the Gateway API status: the operator alone, or
// the operator beside an istiod that writes the specification's part.
type StatusMode string

const (
	// StatusStandalone: no istiod writes Gateway API status (make demo, the test suites, the
	// conformance run), so the operator writes all of it: GatewayClass and Gateway
	// conditions, listeners, addresses (and HTTPRoute parents with RouteStatus).
	StatusStandalone StatusMode = "standalone"
	// StatusBesideIstiod: istiod (its deployment controller off) writes the GatewayClass's
	// conditions, the Gateway's Accepted, Programmed, listeners and addresses, and route
	// status, as in every real cluster; the operator writes only its own condition types on
	// the Gateway and nothing on the GatewayClass.
	StatusBesideIstiod StatusMode = "beside-istiod"
)

// StatusModes lists the modes, for the flag's help and validation.
var StatusModes = []StatusMode{StatusBesideIstiod, StatusStandalone}

// Options are the operator's own settings, shared by its reconcilers.
type Options struct {
	// GatewayClassName is the one class this instance serves.
	GatewayClassName string
	// SystemNamespace holds istiod and the class-level defaults ConfigMap.
	SystemNamespace string
	// Revision is the control-plane revision this instance serves; empty is "default".
	Revision string
	// ProxyImage overrides the proxy image the revision's injector values name; with it,
	// the injector ConfigMap may be missing.
	ProxyImage string
	// MaxConcurrentReconciles is how many Gateways are reconciled in parallel; zero means
	// DefaultMaxConcurrentReconciles.
	MaxConcurrentReconciles int
	// RevisionLeaseDuration, RevisionRenewInterval and RevisionSettle tune revision
	// discovery; zero means the Default* values.
	RevisionLeaseDuration, RevisionRenewInterval, RevisionSettle time.Duration
	// StatusMode divides the status between the operator and istiod; empty is
	// StatusStandalone (the manager binary defaults to StatusBesideIstiod).
	StatusMode StatusMode
	// RouteStatus makes the operator write HTTPRoutes' parent status for its Gateways:
	// only where no istiod runs, which writes the same entries under the same controllerName.
	RouteStatus bool
	// FailureReportDelay is how long a transient API error (a conflict, throttling, a
	// server error or timeout) may keep a Gateway's writes failing before Programmed=False
	// reports it; zero means DefaultFailureReportDelay. Shorter blips are only retried.
	FailureReportDelay time.Duration
}

// DefaultFailureReportDelay keeps one-off API errors, which the next retry fixes, off the
// Gateway's status, while an outage of a write still shows within seconds.
const DefaultFailureReportDelay = 10 * time.Second

// besideIstiod says whether istiod writes the specification's part of the status.
func (o Options) besideIstiod() bool { return o.StatusMode == StatusBesideIstiod }

// Validate refuses settings that cannot work together.
func (o Options) Validate() error {
	switch o.StatusMode {
	case "", StatusStandalone, StatusBesideIstiod:
	default:
		return fmt.Errorf("status mode %q is not one of %v", o.StatusMode, StatusModes)
	}
	if o.RouteStatus && o.besideIstiod() {
		return fmt.Errorf("route status is istiod's to write beside istiod: drop --route-status or use --status-mode=%s", StatusStandalone)
	}
	return nil
}

func (o Options) failureReportDelay() time.Duration {
	if o.FailureReportDelay > 0 {
		return o.FailureReportDelay
	}
	return DefaultFailureReportDelay
}

// CacheOptions keep the operator's memory proportional to its own objects: generated
// resources are cached only when they carry the managed label, and ConfigMaps and
// Namespaces only as trimmed metadata (ConfigMap contents are read on demand).
func CacheOptions(opts Options) cache.Options {
	managed := labels.SelectorFromSet(labels.Set{v1alpha1.ManagedLabel: v1alpha1.ManagedLabelValue})
	strip := cache.TransformStripManagedFields()
	options := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {Transform: trimConfigMap},
			&corev1.Namespace{}: {Transform: trimToIdentity},
			// Only the Secrets listeners can use (type kubernetes.io/tls, as Gateway API
			// asks), watched as metadata only (WatchesMetadata): no Secret's content is
			// cached, and of its metadata only what tells a change.
			&corev1.Secret{}:            {Field: fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS)), Transform: trimToChangeMarker},
			&gatewayv1.ReferenceGrant{}: {Transform: strip},
			// CRDs as metadata only, for their bundle-version annotation.
			crdMetadata():             {Transform: strip},
			&gatewayv1.Gateway{}:      {Transform: strip},
			&gatewayv1.GatewayClass{}: {Transform: strip},
			&gatewayv1.HTTPRoute{}:    {Transform: strip},
			// Only the system namespace's Leases: the revisions' and istiod's (its gateway
			// deployment controller's, which must not run beside the operator).
			&coordinationv1.Lease{}: {
				Namespaces: map[string]cache.Config{opts.SystemNamespace: {}},
				Transform:  strip,
			},
		},
	}
	// Generated objects keep their managed fields: they tell what the operator applied last.
	for _, obj := range GeneratedObjects() {
		options.ByObject[obj] = cache.ByObject{Label: managed}
	}
	return options
}

// trimToIdentity keeps what the operator needs of a Namespace in its cache: name, labels
// (for allowedRoutes selectors), resourceVersion and creation time.
func trimToIdentity(in any) (any, error) {
	if obj, ok := in.(*metav1.PartialObjectMetadata); ok {
		obj.ManagedFields = nil
		obj.Annotations = nil
		obj.OwnerReferences = nil
		obj.Finalizers = nil
	}
	return in, nil
}

// trimConfigMap keeps what the operator needs of a ConfigMap in its cache, which holds
// every ConfigMap of the cluster: name, namespace, resourceVersion, creation time (the
// oldest of several class defaults wins) and of the labels only the class-defaults one.
func trimConfigMap(in any) (any, error) {
	if obj, ok := in.(*metav1.PartialObjectMetadata); ok {
		meta := metav1.ObjectMeta{Name: obj.Name, Namespace: obj.Namespace, ResourceVersion: obj.ResourceVersion, CreationTimestamp: obj.CreationTimestamp}
		if class, labelled := obj.Labels[v1alpha1.DefaultsForClassLabel]; labelled {
			meta.Labels = map[string]string{v1alpha1.DefaultsForClassLabel: class}
		}
		obj.ObjectMeta = meta
	}
	return in, nil
}

// trimToChangeMarker keeps what the operator needs of a Secret in its cache, which holds
// every TLS Secret of the cluster: name, namespace and resourceVersion (when it changes, the
// Secret is read and judged again).
func trimToChangeMarker(in any) (any, error) {
	if obj, ok := in.(*metav1.PartialObjectMetadata); ok {
		obj.ObjectMeta = metav1.ObjectMeta{Name: obj.Name, Namespace: obj.Namespace, ResourceVersion: obj.ResourceVersion}
	}
	return in, nil
}
