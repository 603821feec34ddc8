package controllers

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/apierror"
	"github.com/kubegate/istio-gateway-operator/pkg/contention"
	"github.com/kubegate/istio-gateway-operator/pkg/customize"
	"github.com/kubegate/istio-gateway-operator/pkg/outcome"
	"github.com/kubegate/istio-gateway-operator/pkg/render"
	"github.com/kubegate/istio-gateway-operator/pkg/revision"
	"github.com/kubegate/istio-gateway-operator/pkg/sources"
)

// GatewayReconciler provisions the resources behind each Gateway of the served class and
// reports the outcome on the Gateway's status.
type GatewayReconciler struct {
	Client client.Client
	// APIReader reads around the cache: ConfigMap contents, and objects the label-filtered
	// cache cannot see, before the operator would create one of the same name.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Options   Options
	Revisions *RevisionRegistry
	// FieldManager owns this revision's writes.
	FieldManager   string
	configMaps     *configMapSource
	certificates   *certificateSource
	istiod         *istiodDeploymentWatch
	revisionConfig *revisionConfigSource
	// contention stops re-applying an object that another writer keeps changing back;
	// contendedBy keeps, per stopped object (syncKey), what to report about it.
	contention  *contention.Guard
	contendedBy sync.Map
	// statusContention stops writing the specification's part of a Gateway's status when
	// another writer keeps changing it back (istiod with its Gateway API status on, beside
	// a standalone operator); statusWritten holds, per Gateway, the status.Fingerprint of
	// what the operator last wrote or found in place, and statusRivals what to report.
	statusContention *contention.Guard
	statusWritten    sync.Map
	statusRivals     sync.Map
	// failingSince holds, per Gateway whose writes fail with transient API errors, when
	// the failures began (types.NamespacedName -> time.Time).
	failingSince sync.Map
	// inSync remembers, per generated object, the resourceVersion at which it last matched
	// what this operator would apply, and a digest of that: an unchanged object whose
	// desired state is unchanged needs no managed-fields comparison, the costly part of a
	// resync.
	inSync sync.Map
}

// syncKey names one generated object in inSync.
type syncKey struct{ kind, namespace, name string }

// syncState is an object's resourceVersion and the digest of the apply configuration it
// was found to match.
type syncState struct {
	resourceVersion string
	digest          [sha256.Size]byte
}

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways/finalizers,verbs=update
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=referencegrants,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete

// Reconcile renders the desired resources, applies those that differ from what the
// operator last applied, and reports the result. Invalid customizations leave the
// existing resources exactly as they were.
func (r *GatewayReconciler) Reconcile(ctx context.Context, req reconcile.Request) (_ reconcile.Result, retErr error) {
	defer func() {
		// Only failures in a row count towards reporting one.
		if !apierror.IsTransient(retErr) {
			r.failingSince.Delete(req.NamespacedName)
		}
	}()
	gw := &gatewayv1.Gateway{}
	if err := r.Client.Get(ctx, req.NamespacedName, gw); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !gw.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	ownership, ready := r.Revisions.Decide(gw)
	if !ready {
		// The registry settles shortly and then brings every Gateway back.
		return reconcile.Result{}, nil
	}
	me := revision.Name(r.Options.Revision)
	gc, err := servedClass(ctx, r.Client, string(gw.Spec.GatewayClassName))
	if err != nil {
		return reconcile.Result{}, err
	}
	if gc == nil {
		// Not (or no longer) a class the operator serves. A Gateway that moved to another
		// controller's class loses what the operator generated; a class that does not
		// exist (yet) changes nothing until it appears, and its event brings the Gateway back.
		if ownership.Owner == me || (ownership.Owner == "" && ownership.Reporter == me) {
			return reconcile.Result{}, r.leaveClass(ctx, gw)
		}
		return reconcile.Result{}, nil
	}
	switch {
	case ownership.Owner == me:
	case ownership.Owner == "" && ownership.Reporter == me:
		installed, _ := r.Revisions.Installed()
		res := &outcome.Result{}
		res.Report(outcome.RevisionNotInstalled, fmt.Sprintf("%s %s names a revision that is not installed (installed: %s); no revision manages this Gateway's resources",
			v1alpha1.RevisionLabel, ownership.Requested, strings.Join(installed, ", ")))
		return reconcile.Result{}, r.report(ctx, gw, res)
	default:
		// Another instance writes this Gateway's status now.
		r.statusWritten.Delete(client.ObjectKeyFromObject(gw))
		return reconcile.Result{}, nil
	}

	if message, recheck, err := r.istiod.running(ctx, time.Now()); err != nil {
		return reconcile.Result{}, err
	} else if message != "" {
		res := &outcome.Result{}
		res.Report(outcome.IstiodDeploying, message)
		// The Lease's events, or its expiry, bring the Gateway back.
		return reconcile.Result{RequeueAfter: recheck}, r.report(ctx, gw, res)
	}
	res, err := r.provision(ctx, gw, gc)
	if err != nil {
		return reconcile.Result{}, r.reportPersistentFailure(ctx, gw, res, err)
	}
	if err := r.report(ctx, gw, res); err != nil {
		return reconcile.Result{}, err
	}
	// Refused writes are retried with backoff, once the status has told them.
	return reconcile.Result{}, res.RetryError()
}

// report writes the status one reconcile's Result means. A Result without the Service
// (nothing was applied, or the Service was not) reports the Service as it is, so that the
// addresses stay reported.
func (r *GatewayReconciler) report(ctx context.Context, gw *gatewayv1.Gateway, res *outcome.Result) error {
	if res.Service == nil {
		svc, err := r.generatedService(ctx, gw)
		if err != nil {
			return err
		}
		res.Service = svc
	}
	return r.writeStatus(ctx, gw, res)
}

// reportPersistentFailure returns err for a retry with backoff and, once the Gateway's
// writes have been failing with transient API errors for Options.FailureReportDelay, also
// says so on its status (Programmed=False, reason Pending), keeping the addresses it had.
func (r *GatewayReconciler) reportPersistentFailure(ctx context.Context, gw *gatewayv1.Gateway, res *outcome.Result, err error) error {
	if res == nil || !apierror.IsTransient(err) {
		return err
	}
	key := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
	first, _ := r.failingSince.LoadOrStore(key, time.Now())
	if time.Since(first.(time.Time)) < r.Options.failureReportDelay() {
		return err
	}
	res.Report(outcome.Retrying, err.Error())
	if statusErr := r.report(ctx, gw, res); statusErr != nil {
		return errors.Join(err, statusErr)
	}
	return err
}

// provision renders the Gateway's objects and applies them. It returns the Result of a
// reconcile that went as far as it could (nil with an error it could not begin with).
func (r *GatewayReconciler) provision(ctx context.Context, gw *gatewayv1.Gateway, gc *gatewayv1.GatewayClass) (*outcome.Result, error) {
	res, desired, err := r.desired(ctx, gw, gc)
	if err != nil || desired == nil {
		return res, err
	}
	return res, r.apply(ctx, gw, desired, res)
}

// desired computes what the Gateway's objects must be: its customizations through the
// class policy, the revision's proxy settings, the rendering. A problem the user must fix
// is reported in the Result, with no objects.
func (r *GatewayReconciler) desired(ctx context.Context, gw *gatewayv1.Gateway, gc *gatewayv1.GatewayClass) (*outcome.Result, *render.Resources, error) {
	res := &outcome.Result{}
	layers, rules, err := r.customizations(ctx, gw, gc, res)
	if err != nil {
		return nil, nil, err
	}
	if res.BeforeApply() {
		return res, nil, nil
	}
	// The class policy may reserve spec.infrastructure labels or annotations for the class
	// level: the objects are rendered without them, and the Gateway is told.
	rendered := gw
	if infra, findings := rules.Infrastructure(gw.Spec.Infrastructure); len(findings) > 0 {
		rendered = gw.DeepCopy()
		rendered.Spec.Infrastructure = infra
		res.Findings = append(res.Findings, findings...)
	}
	if msg := render.RequestedAddresses(gw).UnsupportedMessage(); msg != "" {
		res.Report(outcome.UnsupportedAddress, msg)
		return res, nil, nil
	}
	proxy, problem, err := r.revisionConfig.Proxy(ctx)
	if err != nil {
		return nil, nil, err
	}
	if problem != "" {
		res.Report(outcome.RevisionConfigInvalid, problem)
		return res, nil, nil
	}
	desired, err := render.Render(render.Inputs{
		Gateway:  rendered,
		Revision: r.Options.Revision,
		Proxy:    proxy,
		Layers:   layers,
	})
	if err != nil {
		if !customize.IsInvalid(err) {
			return nil, nil, fmt.Errorf("rendering resources of Gateway %s/%s: %w", gw.Namespace, gw.Name, err)
		}
		res.Report(outcome.InvalidParameters, err.Error())
		return res, nil, nil
	}
	res.Findings = append(res.Findings, desired.Adjustments...)
	return res, desired, nil
}

// customizations loads the class-level and Gateway-level ConfigMaps, lowest precedence
// first, with the Gateway level filtered through the class policy, and returns the policy's
// rules for the Gateway. A reference the user must fix is reported (InvalidParameters), not
// returned.
func (r *GatewayReconciler) customizations(ctx context.Context, gw *gatewayv1.Gateway, gc *gatewayv1.GatewayClass, res *outcome.Result) ([]*customize.Set, customize.Rules, error) {
	rules := customize.RulesFor(nil, gc.Name, nil)
	var refs []types.NamespacedName
	defaults, err := resolveClassDefaults(ctx, r.Client, gc, r.Options.SystemNamespace)
	if err != nil {
		return nil, rules, err
	}
	if defaults.Problem != "" {
		res.Report(outcome.InvalidParameters, defaults.Problem)
		return nil, rules, nil
	}
	if defaults.Ref != nil {
		refs = append(refs, *defaults.Ref)
	}
	own := sources.GatewayParameters(gw)
	if own.Problem != "" {
		res.Report(outcome.InvalidParameters, own.Problem)
		return nil, rules, nil
	}
	if own.ConfigMap != nil {
		refs = append(refs, *own.ConfigMap)
	}
	var layers []*customize.Set
	for i, ref := range refs {
		set, err := r.configMaps.Load(ctx, ref)
		var missing *missingParametersError
		switch {
		case errors.As(err, &missing):
			level := "Gateway parametersRef"
			if i == 0 && defaults.Ref != nil {
				level = "GatewayClass " + gc.Name + " defaults"
			}
			res.Report(outcome.InvalidParameters, fmt.Sprintf("%s: %v", level, err))
			return nil, rules, nil
		case customize.IsInvalid(err):
			res.Report(outcome.InvalidParameters, err.Error())
			return nil, rules, nil
		case err != nil:
			return nil, rules, err
		}
		classLevel := i == 0 && defaults.Ref != nil
		if classLevel && set.Policy != nil {
			labels, _ := namespaceLabels(ctx, r.Client)(gw.Namespace)
			rules = customize.RulesFor(set.Policy, gc.Name, labels)
		}
		if !classLevel {
			var findings []customize.Finding
			set, findings = rules.Filter(set)
			res.Findings = append(res.Findings, findings...)
		}
		layers = append(layers, set)
		res.Sources = append(res.Sources, ref.String())
		res.Findings = append(res.Findings, set.Findings...)
	}
	return layers, rules, nil
}

// forget drops what inSync knows of a deleted Gateway's objects.
func (r *GatewayReconciler) forget(gateway types.NamespacedName) {
	r.failingSince.Delete(gateway)
	r.statusWritten.Delete(gateway)
	r.statusRivals.Delete(gateway)
	r.statusContention.Forget(gateway.String())
	for _, kind := range generatedKinds {
		key := syncKey{kind.name, gateway.Namespace, render.Name(gateway.Name)}
		r.inSync.Delete(key)
		r.contendedBy.Delete(key)
		r.contention.Forget(key.String())
	}
}

// leaveClass deletes what the operator generated for a Gateway that is no longer of a
// served class: it moved to another controller's class, or to a class that does not exist.
// When the class the objects were generated for is itself the missing one (a served
// GatewayClass deleted by mistake, which the operator re-creates for the default class),
// they are kept, so that the mistake costs no outage.
func (r *GatewayReconciler) leaveClass(ctx context.Context, gw *gatewayv1.Gateway) error {
	err := r.Client.Get(ctx, types.NamespacedName{Name: string(gw.Spec.GatewayClassName)}, &gatewayv1.GatewayClass{})
	switch {
	case err == nil:
		return r.deleteGenerated(ctx, gw, "")
	case apierrors.IsNotFound(err):
		return r.deleteGenerated(ctx, gw, string(gw.Spec.GatewayClassName))
	default:
		return fmt.Errorf("reading GatewayClass %s: %w", gw.Spec.GatewayClassName, err)
	}
}

// deleteGenerated deletes the objects generated for a Gateway, except those generated
// for the class keepClass (when not empty).
func (r *GatewayReconciler) deleteGenerated(ctx context.Context, gw *gatewayv1.Gateway, keepClass string) error {
	name := types.NamespacedName{Namespace: gw.Namespace, Name: render.Name(gw.Name)}
	for _, kind := range generatedKinds {
		obj := kind.newObject()
		if err := r.Client.Get(ctx, name, obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("reading %s %s: %w", kind.name, name, err)
		}
		if ref := metav1.GetControllerOf(obj); ref == nil || ref.UID != gw.UID {
			continue
		}
		if keepClass != "" && obj.GetLabels()[v1alpha1.GatewayClassNameLabel] == keepClass {
			continue
		}
		log.FromContext(ctx).Info("Deleting generated object of a Gateway that left the class", "kind", kind.name, "object", klogRef(name.Namespace, name.Name))
		if err := r.Client.Delete(ctx, obj, client.Preconditions{UID: new(obj.GetUID())}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting %s %s: %w", kind.name, name, err)
		}
	}
	return nil
}
