package controllers

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/contention"
	"github.com/kubegate/istio-gateway-operator/pkg/sources"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

// Field indexes: each lets a watch event find exactly the Gateways it concerns.
const (
	// GatewayClassIndex indexes Gateways by spec.gatewayClassName.
	GatewayClassIndex = "spec.gatewayClassName"
	// GatewayParametersIndex indexes Gateways by the "namespace/name" of the ConfigMap their
	// spec.infrastructure.parametersRef names.
	GatewayParametersIndex = "spec.infrastructure.parametersRef"
	// HTTPRouteParentIndex indexes HTTPRoutes by the "namespace/name" of each Gateway in
	// their parentRefs.
	HTTPRouteParentIndex = "spec.parentRefs.gateway"
	// GatewayCertificateIndex indexes Gateways by the "namespace/name" of each Secret their
	// listeners' tls.certificateRefs name.
	GatewayCertificateIndex = "spec.listeners.tls.certificateRefs"
)

// EventRecorderName is the reporting controller of the operator's Events.
const EventRecorderName = "istio-gateway-operator"

// SetupWithManager registers the indexes and both reconcilers.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	ctx := context.Background()
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &gatewayv1.Gateway{}, GatewayClassIndex, gatewayClassKey); err != nil {
		return fmt.Errorf("indexing Gateways by class: %w", err)
	}
	if err := indexer.IndexField(ctx, &gatewayv1.Gateway{}, GatewayParametersIndex, gatewayParametersKey); err != nil {
		return fmt.Errorf("indexing Gateways by parametersRef: %w", err)
	}
	if err := indexer.IndexField(ctx, &gatewayv1.Gateway{}, GatewayCertificateIndex, gatewayCertificateKeys); err != nil {
		return fmt.Errorf("indexing Gateways by certificateRef: %w", err)
	}
	if err := indexer.IndexField(ctx, &gatewayv1.HTTPRoute{}, HTTPRouteParentIndex, httpRouteParentKeys); err != nil {
		return fmt.Errorf("indexing HTTPRoutes by parent: %w", err)
	}
	rec := newDedupRecorder(mgr.GetEventRecorder(EventRecorderName), EventWindow, clock.RealClock{})
	revisions := NewRevisionRegistry(mgr.GetClient(), mgr.GetCache(), opts)
	if err := mgr.Add(revisions); err != nil {
		return fmt.Errorf("adding the revision registry: %w", err)
	}
	classes := &GatewayClassReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, Options: opts, Revisions: revisions,
		statusContention: contention.New()}
	if err := classes.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the GatewayClass controller: %w", err)
	}
	gateways := &GatewayReconciler{
		Client:           mgr.GetClient(),
		APIReader:        mgr.GetAPIReader(),
		Recorder:         rec,
		Options:          opts,
		Revisions:        revisions,
		FieldManager:     v1alpha1.FieldManagerFor(opts.Revision),
		configMaps:       newConfigMapSource(mgr.GetClient(), mgr.GetAPIReader()),
		certificates:     newCertificateSource(mgr.GetClient(), mgr.GetAPIReader()),
		istiod:           &istiodDeploymentWatch{reader: mgr.GetClient(), recorder: rec, namespace: opts.SystemNamespace, revision: opts.Revision},
		contention:       contention.New(),
		statusContention: contention.New(),
		revisionConfig: &revisionConfigSource{metadata: mgr.GetClient(), live: mgr.GetAPIReader(),
			namespace: opts.SystemNamespace, revision: opts.Revision, imageOverride: opts.ProxyImage},
	}
	if err := gateways.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Gateway controller: %w", err)
	}
	if opts.RouteStatus {
		routes := &HTTPRouteStatusReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Options: opts, Revisions: revisions}
		if err := routes.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the HTTPRoute status controller: %w", err)
		}
	}
	return nil
}

// holderChanged passes a Lease's creation, deletion and change of holder, not its renewals
// (every few seconds): whether istiod's controller runs changes only with those, or with
// the Lease's expiry, which a requeue covers.
var holderChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		before, okBefore := e.ObjectOld.(*coordinationv1.Lease)
		after, okAfter := e.ObjectNew.(*coordinationv1.Lease)
		return !okBefore || !okAfter || ptr.Deref(before.Spec.HolderIdentity, "") != ptr.Deref(after.Spec.HolderIdentity, "")
	},
}

func gatewayClassKey(o client.Object) []string {
	return []string{string(o.(*gatewayv1.Gateway).Spec.GatewayClassName)}
}

func gatewayParametersKey(o client.Object) []string {
	if ref := sources.GatewayParameters(o.(*gatewayv1.Gateway)).ConfigMap; ref != nil {
		return []string{ref.String()}
	}
	return nil
}

// gatewayCertificateKeys names the Secrets a Gateway's listeners reference, in any
// namespace: a Secret event then finds the Gateways it concerns.
func gatewayCertificateKeys(o client.Object) []string {
	var keys []string
	for _, key := range status.CertificateSecrets(o.(*gatewayv1.Gateway)) {
		keys = append(keys, key.String())
	}
	return keys
}

func httpRouteParentKeys(o client.Object) []string {
	route := o.(*gatewayv1.HTTPRoute)
	var keys []string
	for _, ref := range route.Spec.ParentRefs {
		if parent, ok := status.ParentGateway(ref, route.Namespace); ok {
			keys = append(keys, parent.String())
		}
	}
	return keys
}

// statusOverridden passes a change of a Gateway's status to something other than what this
// operator last wrote there: another writer's (a late write of the revision that owned the
// Gateway before, istiod's), which the status this operator reports must answer. Its own
// writes, and the status of Gateways it does not write, pass nothing.
func (r *GatewayReconciler) statusOverridden() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			gw, ok := e.ObjectNew.(*gatewayv1.Gateway)
			if !ok {
				return false
			}
			last, ok := r.statusWritten.Load(client.ObjectKeyFromObject(gw))
			return ok && last.(uint64) != status.Fingerprint(gw.Status.Conditions, contestedConditionTypes, gw.Status.Addresses, gw.Status.Listeners)
		},
	}
}

// annotationChanged passes an update that changes one of the given annotations: the few
// a Gateway's metadata (not its spec) holds that decide what the operator does.
func annotationChanged(keys ...string) predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			for _, k := range keys {
				before, hadBefore := e.ObjectOld.GetAnnotations()[k]
				after, hasAfter := e.ObjectNew.GetAnnotations()[k]
				if before != after || hadBefore != hasAfter {
					return true
				}
			}
			return false
		},
	}
}

// SetupWithManager watches Gateways of any class (a Gateway leaving the class must be
// cleaned up), the generated objects, and everything a Gateway's resources or status
// depend on, each through a map function that finds exactly the Gateways concerned.
func (r *GatewayReconciler) SetupWithManager(mgr ctrl.Manager) error {
	gatewayChanged := predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, r.statusOverridden(),
		annotationChanged(v1alpha1.ReplaceOnImmutableChangeAnnotation, v1alpha1.KeptAddressAnnotation))
	// The operator creates the generated objects itself, in the reconcile that already
	// wrote the Gateway's status: their creation events would only reconcile each Gateway a
	// second time for nothing. Updates (drift, the load balancer's address) and deletions
	// still count.
	notCreated := predicate.Funcs{CreateFunc: func(event.CreateEvent) bool { return false }}
	specChanged := predicate.And(notCreated,
		predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))
	workers := r.Options.MaxConcurrentReconciles
	if workers <= 0 {
		workers = DefaultMaxConcurrentReconciles
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("gateway").
		// One team's burst must not hold another team's Gateway back (namespaceFairQueue).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers, NewQueue: newNamespaceFairQueue}).
		For(&gatewayv1.Gateway{}, builder.WithPredicates(gatewayChanged))
	for _, kind := range generatedKinds {
		watched := specChanged
		if kind.statusMatters {
			// The Service's status carries the load balancer's address.
			watched = notCreated
		}
		b = b.Owns(kind.newObject(), builder.WithPredicates(watched))
	}
	return b.
		Watches(&gatewayv1.GatewayClass{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysOfClass)).
		WatchesMetadata(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysForConfigMap)).
		Watches(&gatewayv1.HTTPRoute{}, handler.EnqueueRequestsFromMapFunc(gatewaysOfRoute)).
		// Secrets only as metadata: a referenced one is read, and judged, on change.
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysForSecret)).
		Watches(&gatewayv1.ReferenceGrant{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysForReferenceGrant)).
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysSelectingNamespaces),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		// istiod's gateway deployment controller starting or stopping for this revision.
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysOfServedClasses),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
				return o.GetName() == IstiodDeploymentLeaseName(r.Options.Revision)
			}), holderChanged)).
		// A change of installed revisions decides every Gateway's owner again.
		WatchesRawSource(source.Channel(r.Revisions.Subscribe(), handler.EnqueueRequestsFromMapFunc(r.gatewaysOfServedClasses))).
		Complete(r)
}
