package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/contention"
	"github.com/kubegate/istio-gateway-operator/pkg/customize"
	"github.com/kubegate/istio-gateway-operator/pkg/render"
	"github.com/kubegate/istio-gateway-operator/pkg/revision"
	"github.com/kubegate/istio-gateway-operator/pkg/ssa"
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

// outcome is what one reconcile learned, for the status it then writes.
type outcome struct {
	// invalid is set when the customizations cannot be used; nothing was applied.
	invalid string
	// conflict is set when a generated object's name is taken by an object not ours.
	conflict string
	// applyErr is set when the API server refused an apply or delete.
	applyErr string
	// immutable is set when an apply changes a field the API server will not change on an
	// existing object: reported, not retried, nothing deleted.
	immutable string
	// replacing is set while a Service the Gateway opted in to replace is terminating; the
	// new one is created once it is gone.
	replacing string
	// retrying is set when writes have failed with transient API errors for longer than
	// Options.FailureReportDelay; they are still being retried with backoff.
	retrying string
	// findings are the customization parts dropped or adjusted.
	findings []customize.Finding
	// sources are the ConfigMaps whose customizations apply, lowest precedence first.
	sources []string
	// service is the generated Service as last seen, for addresses.
	service *corev1.Service
	// notInstalled is set when the Gateway's istio.io/rev names a revision that is not
	// installed: no one manages its resources.
	notInstalled string
	// unsupportedAddress is set when spec.addresses holds an address the operator cannot
	// request; nothing was applied.
	unsupportedAddress string
	// contended is set when another writer kept changing generated objects back and the
	// operator stopped applying them.
	contended string
	// revisionConfig is set when the revision's own configuration (istiod's mesh and
	// injector ConfigMaps) cannot give the proxies' settings; nothing was applied.
	revisionConfig string
	// istiodDeploying is set while istiod's own gateway deployment controller runs for
	// this revision: it would take every generated object over, so nothing was applied.
	istiodDeploying string
}

// Reconcile renders the desired resources, applies those that differ from what the
// operator last applied, and reports the result. Invalid customizations leave the
// existing resources exactly as they were.
func (r *GatewayReconciler) Reconcile(ctx context.Context, req reconcile.Request) (_ reconcile.Result, retErr error) {
	defer func() {
		// Only failures in a row count towards reporting one.
		if !isTransient(retErr) {
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
		out := &outcome{notInstalled: fmt.Sprintf("%s %s names a revision that is not installed (installed: %s); no revision manages this Gateway's resources",
			v1alpha1.RevisionLabel, ownership.Requested, strings.Join(installed, ", "))}
		if err := r.observeService(ctx, gw, out); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, r.writeStatus(ctx, gw, out)
	default:
		// Another instance writes this Gateway's status now.
		r.statusWritten.Delete(client.ObjectKeyFromObject(gw))
		return reconcile.Result{}, nil
	}

	if message, recheck, err := r.istiod.running(ctx, time.Now()); err != nil {
		return reconcile.Result{}, err
	} else if message != "" {
		out := &outcome{istiodDeploying: message}
		if err := r.observeService(ctx, gw, out); err != nil {
			return reconcile.Result{}, err
		}
		// The Lease's events, or its expiry, bring the Gateway back.
		return reconcile.Result{RequeueAfter: recheck}, r.writeStatus(ctx, gw, out)
	}
	out, err := r.provision(ctx, gw, gc)
	if err != nil {
		return reconcile.Result{}, r.reportPersistentFailure(ctx, gw, out, err)
	}
	if err := r.writeStatus(ctx, gw, out); err != nil {
		return reconcile.Result{}, err
	}
	if out.applyErr != "" {
		return reconcile.Result{}, errors.New(out.applyErr)
	}
	return reconcile.Result{}, nil
}

// reportPersistentFailure returns err for a retry with backoff and, once the Gateway's
// writes have been failing with transient API errors for Options.FailureReportDelay, also
// says so on its status (Programmed=False, reason Pending), keeping the addresses it had.
func (r *GatewayReconciler) reportPersistentFailure(ctx context.Context, gw *gatewayv1.Gateway, out *outcome, err error) error {
	if out == nil || !isTransient(err) {
		return err
	}
	key := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
	first, _ := r.failingSince.LoadOrStore(key, time.Now())
	if time.Since(first.(time.Time)) < r.Options.failureReportDelay() {
		return err
	}
	out.retrying = err.Error()
	if out.service == nil {
		if observeErr := r.observeService(ctx, gw, out); observeErr != nil {
			return errors.Join(err, observeErr)
		}
	}
	if statusErr := r.writeStatus(ctx, gw, out); statusErr != nil {
		return errors.Join(err, statusErr)
	}
	return err
}

func (r *GatewayReconciler) provision(ctx context.Context, gw *gatewayv1.Gateway, gc *gatewayv1.GatewayClass) (*outcome, error) {
	out := &outcome{}
	layers, err := r.customizations(ctx, gw, gc, out)
	if err != nil {
		return nil, err
	}
	if out.invalid != "" {
		return out, r.observeService(ctx, gw, out)
	}
	if msg := render.RequestedAddresses(gw).UnsupportedMessage(); msg != "" {
		out.unsupportedAddress = msg
		return out, r.observeService(ctx, gw, out)
	}
	proxy, problem, err := r.revisionConfig.Proxy(ctx)
	if err != nil {
		return nil, err
	}
	if problem != "" {
		out.revisionConfig = problem
		return out, r.observeService(ctx, gw, out)
	}
	desired, err := render.Render(render.Inputs{
		Gateway:  gw,
		Revision: r.Options.Revision,
		Proxy:    proxy,
		Layers:   layers,
	})
	if err != nil {
		if !customize.IsInvalid(err) {
			return nil, fmt.Errorf("rendering resources of Gateway %s/%s: %w", gw.Namespace, gw.Name, err)
		}
		out.invalid = err.Error()
		return out, r.observeService(ctx, gw, out)
	}
	out.findings = append(out.findings, desired.Adjustments...)
	return out, r.apply(ctx, gw, desired, out)
}

// customizations loads the class-level and Gateway-level ConfigMaps, lowest precedence
// first. A reference the user must fix is recorded in out.invalid, not returned.
func (r *GatewayReconciler) customizations(ctx context.Context, gw *gatewayv1.Gateway, gc *gatewayv1.GatewayClass, out *outcome) ([]*customize.Set, error) {
	var refs []types.NamespacedName
	defaults, err := resolveClassDefaults(ctx, r.Client, gc, r.Options.SystemNamespace)
	if err != nil {
		return nil, err
	}
	if defaults.Problem != "" {
		out.invalid = defaults.Problem
		return nil, nil
	}
	if defaults.Ref != nil {
		refs = append(refs, *defaults.Ref)
	}
	if infra := gw.Spec.Infrastructure; infra != nil && infra.ParametersRef != nil {
		ref := infra.ParametersRef
		if !isConfigMapRef(ref.Group, ref.Kind) {
			out.invalid = fmt.Sprintf("parametersRef %s/%s %s is not supported; only group \"\" kind ConfigMap is", ref.Group, ref.Kind, ref.Name)
			return nil, nil
		}
		refs = append(refs, types.NamespacedName{Namespace: gw.Namespace, Name: ref.Name})
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
			out.invalid = fmt.Sprintf("%s: %v", level, err)
			return nil, nil
		case customize.IsInvalid(err):
			out.invalid = err.Error()
			return nil, nil
		case err != nil:
			return nil, err
		}
		layers = append(layers, set)
		out.sources = append(out.sources, ref.String())
		out.findings = append(out.findings, set.Findings...)
	}
	return layers, nil
}

// generatedKind is what the reconciler needs to know about one kind it generates.
type generatedKind struct {
	name string
	// newObject returns an empty typed object of the kind.
	newObject func() client.Object
	// applyConfiguration converts a rendered object into its apply configuration.
	applyConfiguration func(obj any) (runtime.ApplyConfiguration, error)
}

func kindOf[T any, PT interface {
	*T
	client.Object
}, AC any, PAC interface {
	*AC
	runtime.ApplyConfiguration
}](name string) generatedKind {
	return generatedKind{
		name:      name,
		newObject: func() client.Object { return PT(new(T)) },
		applyConfiguration: func(obj any) (runtime.ApplyConfiguration, error) {
			ac, err := ssa.ApplyConfiguration[AC](obj)
			if err != nil {
				return nil, err
			}
			return PAC(ac), nil
		},
	}
}

var (
	serviceAccountKind = kindOf[corev1.ServiceAccount, *corev1.ServiceAccount, corev1ac.ServiceAccountApplyConfiguration, *corev1ac.ServiceAccountApplyConfiguration]("ServiceAccount")
	deploymentKind     = kindOf[appsv1.Deployment, *appsv1.Deployment, appsv1ac.DeploymentApplyConfiguration, *appsv1ac.DeploymentApplyConfiguration]("Deployment")
	serviceKind        = kindOf[corev1.Service, *corev1.Service, corev1ac.ServiceApplyConfiguration, *corev1ac.ServiceApplyConfiguration]("Service")
	hpaKind            = kindOf[autoscalingv2.HorizontalPodAutoscaler, *autoscalingv2.HorizontalPodAutoscaler, autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration, *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration]("HorizontalPodAutoscaler")
	pdbKind            = kindOf[policyv1.PodDisruptionBudget, *policyv1.PodDisruptionBudget, policyv1ac.PodDisruptionBudgetApplyConfiguration, *policyv1ac.PodDisruptionBudgetApplyConfiguration]("PodDisruptionBudget")

	generatedKinds = []generatedKind{serviceAccountKind, deploymentKind, serviceKind, hpaKind, pdbKind}
)

// desiredObject pairs a kind with its rendered object; a nil object must not exist.
type desiredObject struct {
	kind   generatedKind
	object client.Object
}

func desiredObjects(res *render.Resources) []desiredObject {
	orNil := func(present bool, o client.Object) client.Object {
		if !present {
			return nil
		}
		return o
	}
	return []desiredObject{
		{serviceAccountKind, orNil(res.ServiceAccount != nil, res.ServiceAccount)},
		{deploymentKind, orNil(res.Deployment != nil, res.Deployment)},
		{serviceKind, orNil(res.Service != nil, res.Service)},
		{hpaKind, orNil(res.HorizontalPodAutoscaler != nil, res.HorizontalPodAutoscaler)},
		{pdbKind, orNil(res.PodDisruptionBudget != nil, res.PodDisruptionBudget)},
	}
}

// apply brings every generated object to its desired state. Objects whose name is taken by
// something the operator did not create stop the whole apply before any write.
func (r *GatewayReconciler) apply(ctx context.Context, gw *gatewayv1.Gateway, res *render.Resources, out *outcome) error {
	logger := log.FromContext(ctx)
	name := types.NamespacedName{Namespace: gw.Namespace, Name: render.Name(gw.Name)}
	objects := desiredObjects(res)
	live := make([]client.Object, len(objects))
	var conflicts []string
	for i, d := range objects {
		obj, err := r.current(ctx, d.kind, name)
		if err != nil {
			return err
		}
		if obj != nil && !generatedFor(obj, gw) {
			if d.object != nil {
				conflicts = append(conflicts, fmt.Sprintf("%s %s", d.kind.name, name))
			}
			obj = nil
		}
		live[i] = obj
	}
	if len(conflicts) > 0 {
		out.conflict = fmt.Sprintf("%s already exist and are not managed by %s (no %s label or owner reference to this Gateway); delete or rename them",
			strings.Join(conflicts, ", "), v1alpha1.ManagedLabelValue, v1alpha1.ManagedLabel)
		return r.observeService(ctx, gw, out)
	}
	var failures, contended, immutable []string
	for i, d := range objects {
		if d.object == nil {
			if live[i] == nil {
				continue
			}
			logger.Info("Deleting generated object no customization asks for", "kind", d.kind.name, "object", klogRef(name.Namespace, name.Name))
			if err := r.Client.Delete(ctx, live[i], client.Preconditions{UID: new(live[i].GetUID())}); client.IgnoreNotFound(err) != nil {
				if !isRefusal(err) {
					return fmt.Errorf("deleting %s %s: %w", d.kind.name, name, err)
				}
				failures = append(failures, fmt.Sprintf("deleting %s %s: %v", d.kind.name, name, err))
			}
			continue
		}
		ac, err := d.kind.applyConfiguration(d.object)
		if err != nil {
			return fmt.Errorf("converting %s %s: %w", d.kind.name, name, err)
		}
		sent, err := json.Marshal(ac)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", d.kind.name, name, err)
		}
		key := syncKey{d.kind.name, name.Namespace, name.Name}
		digest := sha256.Sum256(sent)
		if live[i] != nil {
			if r.contention.Stopped(key.String(), gw.Generation) {
				if message, ok := r.contendedBy.Load(key); ok {
					contended = append(contended, message.(string))
				}
				continue
			}
			r.contendedBy.Delete(key)
			same, matchedBefore := false, false
			var owned any
			if known, ok := r.inSync.Load(key); ok {
				st := known.(syncState)
				same = st.resourceVersion == live[i].GetResourceVersion() && st.digest == digest
				// The object matched this very desired state before: someone else changed it.
				matchedBefore = st.digest == digest
			}
			if !same {
				if owned, err = ssa.Owned(live[i], r.FieldManager); err != nil {
					return fmt.Errorf("reading managed fields of %s %s: %w", d.kind.name, name, err)
				}
				if same, err = ssa.Equal(ac, owned); err != nil {
					return err
				}
			}
			if same {
				// Another revision's fields go only once this one owns all it sets: released
				// first, the object would lose its required fields and the API server refuse it.
				if err := r.releaseOtherRevisions(ctx, d.kind, live[i]); err != nil {
					if !isRefusal(err) {
						return err
					}
					failures = append(failures, err.Error())
				}
				r.inSync.Store(key, syncState{resourceVersion: live[i].GetResourceVersion(), digest: digest})
				if d.kind.name == serviceKind.name {
					out.service = live[i].(*corev1.Service)
				}
				continue
			}
			if matchedBefore && r.contention.Reapply(key.String(), gw.Generation, time.Now()) {
				message := contentionMessage(d.kind.name, name, otherWriter(live[i], r.FieldManager), r.contention)
				logger.Info("Another writer keeps changing a generated object back; no longer applying it", "kind", d.kind.name,
					"object", klogRef(name.Namespace, name.Name), "fieldManager", otherWriter(live[i], r.FieldManager))
				contentionStops.WithLabelValues(d.kind.name).Inc()
				r.contendedBy.Store(key, message)
				contended = append(contended, message)
				continue
			}
			logger.V(1).Info("Applying changed generated object", "kind", d.kind.name, "object", klogRef(name.Namespace, name.Name),
				"change", ssa.Change(owned, ac))
		} else {
			logger.V(1).Info("Creating generated object", "kind", d.kind.name, "object", klogRef(name.Namespace, name.Name))
		}
		r.inSync.Delete(key)
		if err := r.Client.Apply(ctx, ac, client.FieldOwner(r.FieldManager), client.ForceOwnership); err != nil {
			if fields := immutableFields(err); len(fields) > 0 && live[i] != nil {
				if d.kind.name == serviceKind.name && replaceOptedIn(gw) {
					svc, message, err := r.replaceService(ctx, gw, d, live[i].(*corev1.Service), fields)
					if err != nil {
						if !isRefusal(err) {
							return err
						}
						failures = append(failures, err.Error())
					}
					out.service, out.replacing = svc, message
					continue
				}
				immutable = append(immutable, immutableMessage(d.kind.name, name, fields))
				logger.Info("A change asks for fields that cannot change on the existing object; left as it is", "kind", d.kind.name,
					"object", klogRef(name.Namespace, name.Name), "fields", fields)
				if d.kind.name == serviceKind.name {
					out.service = live[i].(*corev1.Service)
				}
				continue
			}
			if isRefusal(err) {
				failures = append(failures, fmt.Sprintf("applying %s %s: %v", d.kind.name, name, err))
				continue
			}
			return fmt.Errorf("applying %s %s: %w", d.kind.name, name, err)
		}
		// The response is the object as applied: remember its version as in sync.
		if rv := responseResourceVersion(ac); rv != "" {
			r.inSync.Store(key, syncState{resourceVersion: rv, digest: digest})
		}
		if live[i] != nil {
			// Now that this revision owns every field it sets, the previous owner's go.
			if err := r.releaseOtherRevisions(ctx, d.kind, live[i]); err != nil {
				if !isRefusal(err) {
					return err
				}
				failures = append(failures, err.Error())
			}
		}
		if d.kind.name == serviceKind.name {
			// The apply response carries the allocated cluster IPs: the status written
			// next can already report the address.
			if svc, err := serviceFromResponse(ac); err == nil {
				out.service = svc
			} else if svc, ok := live[i].(*corev1.Service); ok {
				out.service = svc
			}
		}
	}
	if len(failures) > 0 {
		out.applyErr = strings.Join(failures, "; ")
	}
	if len(contended) > 0 {
		out.contended = strings.Join(contended, "; ")
	}
	if len(immutable) > 0 {
		out.immutable = strings.Join(immutable, "; ")
	}
	return nil
}

// immutableMessage tells which fields of which object cannot change in place, and the two
// ways forward; the Service's way costs its load balancer (and maybe its address).
func immutableMessage(kind string, name types.NamespacedName, fields []string) string {
	consequence := "new pods are created for it"
	if kind == serviceKind.name {
		consequence = "a new load balancer is provisioned for it, whose address may differ"
	}
	message := fmt.Sprintf("%s %s: %s cannot change on the existing object, which was left as it is; revert the change, "+
		"or delete %s %s to have it created anew with the change (%s)", kind, name, strings.Join(fields, ", "), kind, name, consequence)
	if kind == serviceKind.name {
		message += fmt.Sprintf(", or annotate the Gateway %s=true to have the operator replace it, asking for the address it has", v1alpha1.ReplaceOnImmutableChangeAnnotation)
	}
	return message
}

// String names the object, as the contention guard keys it.
func (k syncKey) String() string { return k.kind + " " + k.namespace + "/" + k.name }

// otherWriter names the field manager that changed an object last, other than this one.
func otherWriter(obj client.Object, self string) string {
	var latest metav1.ManagedFieldsEntry
	for _, e := range obj.GetManagedFields() {
		if e.Manager == self || e.Subresource != "" || e.Time == nil {
			continue
		}
		if latest.Time == nil || latest.Time.Before(e.Time) {
			latest = e
		}
	}
	if latest.Manager == "" {
		return "unknown"
	}
	return latest.Manager
}

func contentionMessage(kind string, name types.NamespacedName, writer string, guard *contention.Guard) string {
	return fmt.Sprintf("%s %s was changed back %d times within %s, last by field manager %q; the operator stopped applying it to end the write war: "+
		"stop the other writer (istiod's gateway deployment controller: PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER=false), then change the Gateway to resume",
		kind, name, guard.Limit, guard.Window, writer)
}

// responseResourceVersion reads the resourceVersion an apply response put into an apply
// configuration, or "".
func responseResourceVersion(ac runtime.ApplyConfiguration) string {
	js, err := json.Marshal(ac)
	if err != nil {
		return ""
	}
	var object struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &object); err != nil {
		return ""
	}
	return object.Metadata.ResourceVersion
}

// serviceFromResponse reads the Service the API server returned into an apply
// configuration.
func serviceFromResponse(ac runtime.ApplyConfiguration) (*corev1.Service, error) {
	js, err := json.Marshal(ac)
	if err != nil {
		return nil, err
	}
	svc := &corev1.Service{}
	if err := json.Unmarshal(js, svc); err != nil {
		return nil, err
	}
	return svc, nil
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

// releaseOtherRevisions hands an object over completely: fields another revision's field
// manager still owns are released by applying an empty configuration under that manager,
// so nothing the previous owner set outlives the hand-over unless this revision sets it.
func (r *GatewayReconciler) releaseOtherRevisions(ctx context.Context, kind generatedKind, live client.Object) error {
	for _, entry := range live.GetManagedFields() {
		if entry.Operation != metav1.ManagedFieldsOperationApply || entry.Manager == r.FieldManager || entry.Subresource != "" ||
			!strings.HasPrefix(entry.Manager, v1alpha1.FieldManager) {
			continue
		}
		gvk := live.GetObjectKind().GroupVersionKind()
		if gvk.Empty() {
			var err error
			if gvk, err = apiutil.GVKForObject(live, r.Client.Scheme()); err != nil {
				return fmt.Errorf("releasing %s %s/%s: %w", kind.name, live.GetNamespace(), live.GetName(), err)
			}
		}
		empty := &unstructured.Unstructured{}
		empty.SetGroupVersionKind(gvk)
		empty.SetNamespace(live.GetNamespace())
		empty.SetName(live.GetName())
		log.FromContext(ctx).Info("Releasing fields of the previous owner", "kind", kind.name, "object", klogRef(live.GetNamespace(), live.GetName()), "fieldManager", entry.Manager)
		if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(empty), client.FieldOwner(entry.Manager)); err != nil {
			return fmt.Errorf("releasing fields of %s on %s %s/%s: %w", entry.Manager, kind.name, live.GetNamespace(), live.GetName(), err)
		}
	}
	return nil
}

// current returns the object of a generated name as the cluster has it, or nil. The cache
// only holds objects with the managed label, so a miss is confirmed with a live read
// before the name is taken.
func (r *GatewayReconciler) current(ctx context.Context, kind generatedKind, name types.NamespacedName) (client.Object, error) {
	obj := kind.newObject()
	err := r.Client.Get(ctx, name, obj)
	if err == nil {
		return obj, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading %s %s: %w", kind.name, name, err)
	}
	obj = kind.newObject()
	if err := r.APIReader.Get(ctx, name, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading %s %s: %w", kind.name, name, err)
	}
	return obj, nil
}

// generatedFor reports whether the operator created obj for this Gateway: it carries the
// managed label or a controller reference to the Gateway.
func generatedFor(obj client.Object, gw *gatewayv1.Gateway) bool {
	if obj.GetLabels()[v1alpha1.ManagedLabel] == v1alpha1.ManagedLabelValue {
		return true
	}
	if ref := metav1.GetControllerOf(obj); ref != nil && ref.UID == gw.UID {
		return true
	}
	return false
}

// observeService records the generated Service as it is, when nothing was applied, so that
// the addresses stay reported.
func (r *GatewayReconciler) observeService(ctx context.Context, gw *gatewayv1.Gateway, out *outcome) error {
	svc := &corev1.Service{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: render.Name(gw.Name)}, svc)
	switch {
	case err == nil:
		if generatedFor(svc, gw) {
			out.service = svc
		}
		return nil
	case apierrors.IsNotFound(err):
		return nil
	default:
		return fmt.Errorf("reading Service %s/%s: %w", gw.Namespace, render.Name(gw.Name), err)
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
