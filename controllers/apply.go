package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/apierror"
	"github.com/kubegate/istio-gateway-operator/pkg/contention"
	"github.com/kubegate/istio-gateway-operator/pkg/outcome"
	"github.com/kubegate/istio-gateway-operator/pkg/render"
	"github.com/kubegate/istio-gateway-operator/pkg/ssa"
)

// action is what applying one generated object comes to.
type action int

const (
	// leave: nothing is desired and nothing is there.
	leave action = iota
	// remove: no customization asks for the object any more; it is deleted.
	remove
	// create: the object does not exist yet.
	create
	// update: the fields this operator owns differ from the desired ones.
	update
	// keep: the object is as desired; only another revision's fields may remain to release.
	keep
	// hold: another writer kept changing the object back, and the operator stopped applying it.
	hold
)

// step is the plan for one generated object.
type step struct {
	kind   generatedKind
	name   types.NamespacedName
	action action
	// live is the object as the cluster has it (nil when there is none); desired as rendered.
	live    client.Object
	desired client.Object
	// ac is the apply configuration sent, and digest its hash, as inSync remembers it.
	ac     runtime.ApplyConfiguration
	digest [sha256.Size]byte
	// owned are the fields this manager owned on live, for the log line of an update.
	owned any
	// changedBack is set on an update of an object that matched this very desired state
	// before: another writer changed it, which the contention guard counts.
	changedBack bool
}

// key names the step's object in inSync and the contention guard.
func (s step) key() syncKey { return syncKey{s.kind.name, s.name.Namespace, s.name.Name} }

// apply brings every generated object to its desired state: it reads the live objects,
// plans each object's step from them (no write), then carries the steps out. Objects whose
// name is taken by something the operator did not create stop the whole apply before any
// write.
func (r *GatewayReconciler) apply(ctx context.Context, gw *gatewayv1.Gateway, desired *render.Resources, res *outcome.Result) error {
	name := types.NamespacedName{Namespace: gw.Namespace, Name: render.Name(gw.Name)}
	objects := desiredObjects(desired)
	live, conflicts, err := r.liveObjects(ctx, gw, name, objects)
	if err != nil {
		return err
	}
	if len(conflicts) > 0 {
		res.Report(outcome.NameTaken, fmt.Sprintf("%s already exist and are not managed by %s (no %s label or owner reference to this Gateway); delete or rename them",
			strings.Join(conflicts, ", "), v1alpha1.ManagedLabelValue, v1alpha1.ManagedLabel))
		return nil
	}
	for i, d := range objects {
		s, err := r.plan(gw, name, d, live[i])
		if err != nil {
			return err
		}
		if err := r.execute(ctx, gw, s, res); err != nil {
			return err
		}
	}
	return nil
}

// liveObjects reads each generated object; one of the generated name that the operator did
// not create counts as absent, and as a conflict when it is desired.
func (r *GatewayReconciler) liveObjects(ctx context.Context, gw *gatewayv1.Gateway, name types.NamespacedName, objects []desiredObject) ([]client.Object, []string, error) {
	live := make([]client.Object, len(objects))
	// Read at once: for a new Gateway each kind's cache miss is confirmed with a live read,
	// and one round trip instead of five keeps its first reconcile short under load.
	var reads errgroup.Group
	for i, d := range objects {
		reads.Go(func() error {
			obj, err := r.current(ctx, d.kind, name)
			live[i] = obj
			return err
		})
	}
	if err := reads.Wait(); err != nil {
		return nil, nil, err
	}
	var conflicts []string
	for i, d := range objects {
		obj := live[i]
		if obj != nil && !generatedFor(obj, gw) {
			if d.object != nil {
				conflicts = append(conflicts, fmt.Sprintf("%s %s", d.kind.name, name))
			}
			obj = nil
		}
		live[i] = obj
	}
	return live, conflicts, nil
}

// plan decides one object's step from what is desired, what is live and what the operator
// remembers of it (inSync, the contention guard); it writes nothing.
func (r *GatewayReconciler) plan(gw *gatewayv1.Gateway, name types.NamespacedName, d desiredObject, live client.Object) (step, error) {
	s := step{kind: d.kind, name: name, live: live, desired: d.object}
	if d.object == nil {
		if live != nil {
			s.action = remove
		}
		return s, nil
	}
	ac, sent, err := d.applyRequest()
	if err != nil {
		return s, fmt.Errorf("%s %s: %w", d.kind.name, name, err)
	}
	s.ac, s.digest = ac, sha256.Sum256(sent)
	if live == nil {
		s.action = create
		return s, nil
	}
	if r.contention.Stopped(s.key().String(), gw.Generation) {
		s.action = hold
		return s, nil
	}
	same := false
	if known, ok := r.inSync.Load(s.key()); ok {
		st := known.(syncState)
		same = st.resourceVersion == live.GetResourceVersion() && st.digest == s.digest
		s.changedBack = st.digest == s.digest
	}
	if !same {
		if s.owned, err = d.kind.owned(live, r.FieldManager); err != nil {
			return s, fmt.Errorf("reading managed fields of %s %s: %w", d.kind.name, name, err)
		}
		if same, err = ssa.Equal(ac, s.owned); err != nil {
			return s, err
		}
	}
	s.action = update
	if same {
		s.action = keep
	}
	return s, nil
}

// execute carries one step out and records in res what came of it. Writes the API server
// refuses are recorded (and retried after the status is written); other errors return.
func (r *GatewayReconciler) execute(ctx context.Context, gw *gatewayv1.Gateway, s step, res *outcome.Result) error {
	logger := log.FromContext(ctx).WithValues("kind", s.kind.name, "object", klogRef(s.name.Namespace, s.name.Name))
	key := s.key()
	switch s.action {
	case leave:
		return nil
	case remove:
		logger.Info("Deleting generated object no customization asks for")
		if err := r.Client.Delete(ctx, s.live, client.Preconditions{UID: new(s.live.GetUID())}); client.IgnoreNotFound(err) != nil {
			return r.refused(res, err, fmt.Errorf("deleting %s %s: %w", s.kind.name, s.name, err))
		}
		return nil
	case hold:
		if message, ok := r.contendedBy.Load(key); ok {
			res.Report(outcome.Contended, message.(string))
		}
		r.observed(s, res)
		return nil
	case keep:
		r.contendedBy.Delete(key)
		// Another revision's fields go only once this one owns all it sets: released
		// first, the object would lose its required fields and the API server refuse it.
		if err := r.releaseOtherRevisions(ctx, s.kind, s.live); err != nil {
			if err := r.refused(res, err, err); err != nil {
				return err
			}
		}
		r.inSync.Store(key, syncState{resourceVersion: s.live.GetResourceVersion(), digest: s.digest})
		r.observed(s, res)
		return nil
	case update:
		r.contendedBy.Delete(key)
		if s.changedBack && r.contention.Reapply(key.String(), gw.Generation, time.Now()) {
			writer := otherWriter(s.live, r.FieldManager)
			message := contentionMessage(s.kind.name, s.name, writer, r.contention)
			logger.Info("Another writer keeps changing a generated object back; no longer applying it", "fieldManager", writer)
			contentionStops.WithLabelValues(s.kind.name).Inc()
			r.contendedBy.Store(key, message)
			res.Report(outcome.Contended, message)
			r.observed(s, res)
			return nil
		}
		logger.V(1).Info("Applying changed generated object", "change", ssa.Change(s.owned, s.ac))
	case create:
		logger.V(1).Info("Creating generated object")
	}
	r.inSync.Delete(key)
	if err := r.Client.Apply(ctx, s.ac, client.FieldOwner(r.FieldManager), client.ForceOwnership); err != nil {
		return r.notApplied(ctx, gw, s, err, res)
	}
	// The response is the object as applied: remember its version as in sync.
	if rv := responseResourceVersion(s.ac); rv != "" {
		r.inSync.Store(key, syncState{resourceVersion: rv, digest: s.digest})
	}
	if s.live != nil {
		// Now that this revision owns every field it sets, the previous owner's go.
		if err := r.releaseOtherRevisions(ctx, s.kind, s.live); err != nil {
			if err := r.refused(res, err, err); err != nil {
				return err
			}
		}
	}
	if s.kind.name == serviceKind.name {
		// The apply response carries the allocated cluster IPs: the status written
		// next can already report the address.
		if svc, err := serviceFromResponse(s.ac); err == nil {
			res.Service = svc
		} else {
			r.observed(s, res)
		}
	}
	return nil
}

// notApplied handles an apply the API server did not take: a change of fields that cannot
// change in place is reported (or, for a Service whose Gateway opted in, replaced), a
// refusal recorded, anything else returned.
func (r *GatewayReconciler) notApplied(ctx context.Context, gw *gatewayv1.Gateway, s step, err error, res *outcome.Result) error {
	fields := apierror.ImmutableFields(err)
	if len(fields) == 0 || s.live == nil {
		return r.refused(res, err, fmt.Errorf("applying %s %s: %w", s.kind.name, s.name, err))
	}
	if s.kind.name == serviceKind.name && replaceOptedIn(gw) {
		svc, message, err := r.replaceService(ctx, gw, s, s.live.(*corev1.Service), fields)
		if err != nil {
			if err := r.refused(res, err, err); err != nil {
				return err
			}
		}
		if message != "" {
			res.Report(outcome.Replacing, message)
		}
		res.Service = svc
		return nil
	}
	res.Report(outcome.Immutable, immutableMessage(s.kind.name, s.name, fields))
	log.FromContext(ctx).Info("A change asks for fields that cannot change on the existing object; left as it is", "kind", s.kind.name,
		"object", klogRef(s.name.Namespace, s.name.Name), "fields", fields)
	r.observed(s, res)
	return nil
}

// refused records a write the API server refused (cause) in res, and returns err for any
// other failure.
func (r *GatewayReconciler) refused(res *outcome.Result, cause, err error) error {
	if !apierror.IsRefusal(cause) {
		return err
	}
	res.Refuse(err.Error())
	return nil
}

// observed records the live Service of a step as the one to report.
func (r *GatewayReconciler) observed(s step, res *outcome.Result) {
	if svc, ok := s.live.(*corev1.Service); ok && s.kind.name == serviceKind.name {
		res.Service = svc
	}
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

// generatedService is the Service generated for the Gateway as it is, or nil.
func (r *GatewayReconciler) generatedService(ctx context.Context, gw *gatewayv1.Gateway) (*corev1.Service, error) {
	svc := &corev1.Service{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: render.Name(gw.Name)}, svc)
	switch {
	case err == nil:
		if generatedFor(svc, gw) {
			return svc, nil
		}
		return nil, nil
	case apierrors.IsNotFound(err):
		return nil, nil
	default:
		return nil, fmt.Errorf("reading Service %s/%s: %w", gw.Namespace, render.Name(gw.Name), err)
	}
}
