package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"
	"sigs.k8s.io/gateway-api/pkg/consts"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/contention"
	"github.com/kubegate/istio-gateway-operator/pkg/outcome"
	"github.com/kubegate/istio-gateway-operator/pkg/sources"
	"github.com/kubegate/istio-gateway-operator/pkg/ssa"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

// GatewayClassReconciler keeps the default GatewayClass present, accepts every class whose
// controllerName is the operator's, and creates each class's defaults ConfigMap once per
// GatewayClass (until its ClassDefaultsEnsuredAnnotation is removed).
type GatewayClassReconciler struct {
	Client   client.Client
	Recorder recorder.EventRecorder
	Options  Options
	// Revisions tells whether this instance speaks for the class: only the highest
	// installed revision writes the GatewayClass's status.
	Revisions *RevisionRegistry

	// reported holds, per GatewayClass UID, the defaults problem last told by Event beside
	// istiod, where no status condition remembers it.
	reported sync.Map
	// APIReader reads a class's managed fields, which the cache keeps none of, to name the
	// other writer of its status.
	APIReader client.Reader
	// statusContention stops writing a class's status that another writer keeps changing
	// back (istiod with its Gateway API status on, beside a standalone operator);
	// statusWritten holds, per class name, the status.Fingerprint of what was last written
	// or found in place.
	statusContention *contention.Guard
	statusWritten    sync.Map
}

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses/status,verbs=get;patch;update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=aks-istio-system,resources=configmaps,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=aks-istio-system,resources=leases,verbs=get;list;watch;create;patch

// Reconcile ensures the default class exists, records a served class's defaults resolution
// and accepts it.
func (r *GatewayClassReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	gc := &gatewayv1.GatewayClass{}
	if err := r.Client.Get(ctx, req.NamespacedName, gc); err != nil {
		if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, fmt.Errorf("reading GatewayClass %s: %w", req.Name, err)
		}
		if req.Name != r.Options.GatewayClassName {
			return reconcile.Result{}, nil
		}
		logger.Info("Creating GatewayClass", "gatewayClass", req.Name)
		gc = &gatewayv1.GatewayClass{
			ObjectMeta: metav1.ObjectMeta{Name: req.Name},
			Spec:       gatewayv1.GatewayClassSpec{ControllerName: v1alpha1.ControllerName},
		}
		if err := r.Client.Create(ctx, gc, client.FieldOwner(v1alpha1.FieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
			return reconcile.Result{}, fmt.Errorf("creating GatewayClass %s: %w", req.Name, err)
		}
		// The creation event brings the class back here to be accepted.
		return reconcile.Result{}, nil
	}
	if !isServedClass(gc) {
		return reconcile.Result{}, nil
	}
	if _, done := gc.Annotations[v1alpha1.ClassDefaultsEnsuredAnnotation]; !done {
		if err := r.ensureDefaultsConfigMap(ctx, gc); err != nil {
			return reconcile.Result{}, err
		}
	}
	if !r.Revisions.IsHighest() {
		return reconcile.Result{}, nil
	}
	if r.Options.besideIstiod() || r.statusContention.Stopped(gc.Name, gc.Generation) {
		// istiod writes the class's status; a problem with the defaults is told by Event.
		return reconcile.Result{}, r.reportDefaultsByEvent(ctx, gc)
	}
	defaults, err := resolveClassDefaults(ctx, r.Client, gc, r.Options.SystemNamespace)
	if err != nil {
		return reconcile.Result{}, err
	}
	versions, err := bundleVersions(ctx, r.Client)
	if err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, r.writeStatus(ctx, gc, outcome.ClassConditions(gc, defaults, versions))
}

// ensureDefaultsConfigMap creates the class's defaults ConfigMap unless a class-level
// ConfigMap is in place, and then records on the class that this is done
// (ClassDefaultsEnsuredAnnotation): from then on a deleted ConfigMap stays deleted.
func (r *GatewayClassReconciler) ensureDefaultsConfigMap(ctx context.Context, gc *gatewayv1.GatewayClass) error {
	cm := defaultClassConfigMap(gc.Name, r.Options.SystemNamespace)
	// Any class-level ConfigMap in place (named by the class, or labelled for it, under
	// whatever name) means there is nothing to create.
	defaults, err := resolveClassDefaults(ctx, r.Client, gc, r.Options.SystemNamespace)
	if err != nil {
		return err
	}
	if defaults.Problem != "" {
		// Nothing is recorded: the class's defaults are decided once the problem is fixed.
		return nil
	}
	ensured := client.ObjectKeyFromObject(cm)
	if defaults.Ref != nil {
		ensured = *defaults.Ref
	} else {
		switch err := r.Client.Create(ctx, cm, client.FieldOwner(v1alpha1.FieldManager)); {
		case err == nil:
			log.FromContext(ctx).Info("Created class defaults ConfigMap", "configMap", klogRef(cm.Namespace, cm.Name))
		case apierrors.IsAlreadyExists(err):
		default:
			return fmt.Errorf("creating ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
	patch := client.MergeFrom(gc.DeepCopy())
	metav1.SetMetaDataAnnotation(&gc.ObjectMeta, v1alpha1.ClassDefaultsEnsuredAnnotation, ensured.String())
	if err := r.Client.Patch(ctx, gc, patch, client.FieldOwner(v1alpha1.FieldManager)); err != nil {
		return fmt.Errorf("recording on GatewayClass %s that its defaults ConfigMap %s is ensured: %w", gc.Name, ensured, err)
	}
	return nil
}

// crdGVK is CustomResourceDefinition's kind, read as metadata only (its annotations carry
// the Gateway API bundle version).
var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// bundleVersions reads the bundle-version annotation of each Gateway API CRD the operator
// needs, from the metadata cache.
func bundleVersions(ctx context.Context, reader client.Reader) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range status.RequiredCRDs {
		crd := &metav1.PartialObjectMetadata{}
		crd.SetGroupVersionKind(crdGVK)
		if err := reader.Get(ctx, types.NamespacedName{Name: name}, crd); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("reading CustomResourceDefinition %s: %w", name, err)
		}
		out[name] = crd.Annotations[consts.BundleVersionAnnotation]
	}
	return out, nil
}

// reportDefaultsByEvent records a Warning Event on the class when its defaults cannot be
// told apart, once per change of the problem, where the status is not the operator's.
func (r *GatewayClassReconciler) reportDefaultsByEvent(ctx context.Context, gc *gatewayv1.GatewayClass) error {
	defaults, err := resolveClassDefaults(ctx, r.Client, gc, r.Options.SystemNamespace)
	if err != nil {
		return err
	}
	c := meta.FindStatusCondition(outcome.ClassConditions(gc, defaults, nil), status.ConditionClassDefaultsResolved)
	if c.Status != metav1.ConditionFalse {
		r.reported.Delete(gc.UID)
		return nil
	}
	if prev, seen := r.reported.Load(gc.UID); seen && prev.(string) == c.Message {
		return nil
	}
	r.reported.Store(gc.UID, c.Message)
	r.Recorder.Eventf(gc, nil, corev1.EventTypeWarning, c.Reason, "ResolveClassDefaults", "%s", c.Message)
	return nil
}

func (r *GatewayClassReconciler) writeStatus(ctx context.Context, gc *gatewayv1.GatewayClass, conditions []metav1.Condition) error {
	desired := status.MergeConditions(gc.Status.Conditions, conditions, metav1.Now())
	written := status.Fingerprint(desired, classContestedTypes, nil, nil)
	if status.ConditionsUpToDate(gc.Status.Conditions, desired) {
		r.statusWritten.Store(gc.Name, written)
		return nil
	}
	if last, ok := r.statusWritten.Load(gc.Name); ok && last.(uint64) != status.Fingerprint(gc.Status.Conditions, classContestedTypes, nil, nil) {
		rival, err := r.statusRival(ctx, gc)
		if err != nil {
			return err
		}
		if rival != "" && r.statusContention.Reapply(gc.Name, gc.Generation, time.Now()) {
			contentionStops.WithLabelValues("GatewayClassStatus").Inc()
			log.FromContext(ctx).Info("Stopped writing a GatewayClass's status that another writer keeps changing", "fieldManager", rival)
			r.Recorder.Eventf(gc, nil, corev1.EventTypeWarning, status.ReasonContended, "WriteStatus",
				"This GatewayClass's status was changed back %d times within %s, last by field manager %q; the operator stopped writing it to end the write war: "+
					"run istiod with PILOT_ENABLE_GATEWAY_API_STATUS=false, or this operator with --status-mode=%s, then change the GatewayClass to resume",
				r.statusContention.Limit, r.statusContention.Window, rival, StatusBesideIstiod)
			return nil
		}
	}
	ac := gatewayv1ac.GatewayClass(gc.Name).WithStatus(gatewayv1ac.GatewayClassStatus())
	for _, c := range desired {
		ac.Status.WithConditions(conditionAC(c))
	}
	if err := r.Client.Status().Apply(ctx, ac, client.FieldOwner(v1alpha1.FieldManagerFor(r.Options.Revision)), client.ForceOwnership); err != nil {
		return fmt.Errorf("writing status of GatewayClass %s: %w", gc.Name, err)
	}
	r.statusWritten.Store(gc.Name, written)
	prev := meta.FindStatusCondition(gc.Status.Conditions, status.ConditionClassDefaultsResolved)
	if now := meta.FindStatusCondition(desired, status.ConditionClassDefaultsResolved); now.Status == metav1.ConditionFalse && (prev == nil || prev.Message != now.Message) {
		r.Recorder.Eventf(gc, nil, corev1.EventTypeWarning, now.Reason, "ResolveClassDefaults", "%s", now.Message)
	}
	return nil
}

// classContestedTypes is the class condition istiod writes too.
var classContestedTypes = []string{string(gatewayv1.GatewayClassConditionStatusAccepted)}

// statusRival names the other field manager that owns the class's Accepted condition, read
// from the API server (the cache keeps no managed fields), or "".
func (r *GatewayClassReconciler) statusRival(ctx context.Context, gc *gatewayv1.GatewayClass) (string, error) {
	fresh := &gatewayv1.GatewayClass{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(gc), fresh); err != nil {
		return "", client.IgnoreNotFound(fmt.Errorf("reading GatewayClass %s for its status writers: %w", gc.Name, err))
	}
	rival := ssa.StatusWriterOf(fresh.ManagedFields, v1alpha1.FieldManagerFor(r.Options.Revision), classContestedTypes[0])
	if strings.HasPrefix(rival, v1alpha1.FieldManager) {
		// Another revision of this operator: the highest installed one reports, a hand-over.
		return "", nil
	}
	return rival, nil
}

// SetupWithManager watches the served classes (and the default class, to re-create it)
// and the ConfigMaps that are class-level customization.
func (r *GatewayClassReconciler) SetupWithManager(mgr ctrl.Manager) error {
	servedOrDefault := predicate.NewPredicateFuncs(func(o client.Object) bool {
		gc, ok := o.(*gatewayv1.GatewayClass)
		return o.GetName() == r.Options.GatewayClassName || (ok && gc.Spec.ControllerName == v1alpha1.ControllerName)
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("gatewayclass").
		For(&gatewayv1.GatewayClass{}, builder.WithPredicates(servedOrDefault)).
		WatchesMetadata(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.classesForConfigMap)).
		// Installing or upgrading the Gateway API CRDs changes SupportedVersion.
		WatchesMetadata(crdMetadata(), handler.EnqueueRequestsFromMapFunc(r.servedClassRequests),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return slices.Contains(status.RequiredCRDs, o.GetName()) }))).
		WatchesRawSource(startupSource(r.Options.GatewayClassName)).
		WatchesRawSource(source.Channel(r.Revisions.Subscribe(), handler.EnqueueRequestsFromMapFunc(r.servedClassRequests))).
		Complete(r)
}

func crdMetadata() *metav1.PartialObjectMetadata {
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(crdGVK)
	return crd
}

// classesForConfigMap maps a ConfigMap to the served classes it is class-level
// customization of, so that adding a second labelled one is reported. A ConfigMap
// labelled for a class is mapped to that class even while another is named by the class's
// parametersRef: the status then says which one is in force.
func (r *GatewayClassReconciler) classesForConfigMap(ctx context.Context, o client.Object) []reconcile.Request {
	classes, err := servedClasses(ctx, r.Client)
	if err != nil {
		log.FromContext(ctx).Error(err, "Listing served GatewayClasses for a ConfigMap change")
		return nil
	}
	var out []reconcile.Request
	for i := range classes {
		if sources.IsLabelledDefaults(o, classes[i].Name, r.Options.SystemNamespace) || sources.IsClassConfigMapOf(&classes[i], o, r.Options.SystemNamespace) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: classes[i].Name}})
		}
	}
	return out
}

// servedClassRequests maps a change of installed revisions to every served class: the
// highest revision writes their status.
func (r *GatewayClassReconciler) servedClassRequests(ctx context.Context, _ client.Object) []reconcile.Request {
	classes, err := servedClasses(ctx, r.Client)
	if err != nil {
		log.FromContext(ctx).Error(err, "Listing served GatewayClasses for a revision change")
		return nil
	}
	out := []reconcile.Request{{NamespacedName: types.NamespacedName{Name: r.Options.GatewayClassName}}}
	for _, gc := range classes {
		if gc.Name != r.Options.GatewayClassName {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: gc.Name}})
		}
	}
	return out
}
