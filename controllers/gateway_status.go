package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/customize"
	"github.com/kubegate/istio-gateway-operator/pkg/outcome"
	"github.com/kubegate/istio-gateway-operator/pkg/ssa"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

// writeStatus applies the Gateway's status when it differs from what is there, and
// records an Event when a problem first appears or changes.
func (r *GatewayReconciler) writeStatus(ctx context.Context, gw *gatewayv1.Gateway, res *outcome.Result) error {
	now := metav1.Now()
	if r.Options.besideIstiod() {
		// istiod writes the listeners: nothing they depend on (routes, grants, Secrets) is read.
		desired := outcome.GatewayStatus(gw, res, status.ListenerInputs{}, r.Options.Revision)
		return r.writeOwnConditions(ctx, gw, desired.Conditions, now, res, r.FieldManager)
	}
	key := client.ObjectKeyFromObject(gw)
	if r.statusContention.Stopped(key.String(), gw.Generation) {
		if message, ok := r.statusRivals.Load(key); ok {
			return r.writeContendedStatus(ctx, gw, res, message.(string), now)
		}
	}
	r.statusRivals.Delete(key)
	in, err := r.listenerInputs(ctx, gw)
	if err != nil {
		return err
	}
	current, rival, err := r.currentStatus(ctx, gw)
	if errors.Is(err, errCacheBehind) {
		// The Gateway changed since the cache saw it; the change's own event reconciles it
		// again, with an ownership decided on what it is now.
		log.FromContext(ctx).V(1).Info("Not writing status decided on an outdated Gateway", "reason", err)
		return nil
	}
	if err != nil {
		return err
	}
	gw = current
	desired := outcome.GatewayStatus(gw, res, in, r.Options.Revision)
	desired.Conditions = status.MergeConditions(gw.Status.Conditions, desired.Conditions, now)
	for i := range desired.Listeners {
		var existing []metav1.Condition
		for _, l := range gw.Status.Listeners {
			if l.Name == desired.Listeners[i].Name {
				existing = l.Conditions
			}
		}
		desired.Listeners[i].Conditions = status.MergeConditions(existing, desired.Listeners[i].Conditions, now)
	}
	written := status.Fingerprint(desired.Conditions, contestedConditionTypes, desired.Addresses, desired.Listeners)
	if status.GatewayUpToDate(&gw.Status, desired) {
		r.statusWritten.Store(key, written)
		return nil
	}
	if rival != "" && r.statusContention.Reapply(key.String(), gw.Generation, time.Now()) {
		message := fmt.Sprintf("This Gateway's status was changed back %d times within %s, last by field manager %q; the operator stopped writing Accepted, Programmed, "+
			"listeners and addresses to end the write war: run istiod with PILOT_ENABLE_GATEWAY_API_STATUS=false, or this operator with --status-mode=%s, then change the Gateway to resume",
			r.statusContention.Limit, r.statusContention.Window, rival, StatusBesideIstiod)
		r.statusRivals.Store(key, message)
		contentionStops.WithLabelValues("GatewayStatus").Inc()
		log.FromContext(ctx).Info("Stopped writing a Gateway's status that another writer keeps changing", "fieldManager", rival)
		return r.writeContendedStatus(ctx, gw, res, message, now)
	}
	statusAC, err := ssa.ApplyConfiguration[gatewayv1ac.GatewayStatusApplyConfiguration](desired)
	if err != nil {
		return fmt.Errorf("converting status of Gateway %s/%s: %w", gw.Namespace, gw.Name, err)
	}
	// The resourceVersion the decision was made on is a precondition: a Gateway relabelled
	// (handed to another revision) or changed meanwhile refuses this write with a conflict,
	// which is retried on what the Gateway is then. A late write of a previous owner can
	// therefore never win.
	ac := gatewayv1ac.Gateway(gw.Name, gw.Namespace).WithStatus(statusAC)
	if gw.ResourceVersion != "" {
		ac.WithResourceVersion(gw.ResourceVersion)
	}
	// Remembered before the write, so that the watch event of the write itself is known as
	// this operator's (statusOverridden).
	r.statusWritten.Store(key, written)
	if err := r.Client.Status().Apply(ctx, ac, client.FieldOwner(r.FieldManager), client.ForceOwnership); err != nil {
		r.statusWritten.Delete(key)
		return fmt.Errorf("writing status of Gateway %s/%s: %w", gw.Namespace, gw.Name, err)
	}
	r.recordProblems(gw, desired.Conditions, res)
	return nil
}

// errCacheBehind says that the API server holds a newer generation or revision label of a
// Gateway than the cache the reconcile decided on.
var errCacheBehind = errors.New("the cache is behind the API server")

// contestedConditionTypes are the Gateway conditions istiod writes too, when its Gateway
// API status is on: the ones a standalone operator can find changed by another writer.
var contestedConditionTypes = []string{string(gatewayv1.GatewayConditionAccepted), string(gatewayv1.GatewayConditionProgrammed)}

// currentStatus is the Gateway with the status to compare the desired one with, and the field
// manager of another writer that changed what this operator last wrote there, or "".
// While the cached status is what the operator last wrote (or it has written nothing),
// the cache is that status. Otherwise the Gateway is read from the API server, for its
// status and its managed fields (the cache keeps none): either the cache lags behind the
// operator's own write, which the API server already holds (then nothing needs writing,
// however late the watch event of an earlier write arrives), or another writer changed it.
func (r *GatewayReconciler) currentStatus(ctx context.Context, gw *gatewayv1.Gateway) (*gatewayv1.Gateway, string, error) {
	key := client.ObjectKeyFromObject(gw)
	last, ok := r.statusWritten.Load(key)
	if !ok || last.(uint64) == status.Fingerprint(gw.Status.Conditions, contestedConditionTypes, gw.Status.Addresses, gw.Status.Listeners) {
		return gw, "", nil
	}
	fresh := &gatewayv1.Gateway{}
	if err := r.APIReader.Get(ctx, key, fresh); err != nil {
		if apierrors.IsNotFound(err) {
			return gw, "", nil
		}
		return nil, "", fmt.Errorf("reading Gateway %s for its status and status writers: %w", key, err)
	}
	if fresh.Generation != gw.Generation || fresh.Labels[v1alpha1.RevisionLabel] != gw.Labels[v1alpha1.RevisionLabel] {
		return nil, "", fmt.Errorf("%w: Gateway %s is at generation %d with %s %q, the cache at %d with %q", errCacheBehind, key,
			fresh.Generation, v1alpha1.RevisionLabel, fresh.Labels[v1alpha1.RevisionLabel], gw.Generation, gw.Labels[v1alpha1.RevisionLabel])
	}
	// The spec, generation and labels are those the outcome was computed from.
	base := *gw
	base.Status = fresh.Status
	base.ResourceVersion = fresh.ResourceVersion
	for _, t := range contestedConditionTypes {
		// Another revision of this operator writing here is a hand-over, decided by the
		// Gateway's label, not a war: its late write is simply answered.
		if rival := ssa.StatusWriterOf(fresh.ManagedFields, r.FieldManager, t); rival != "" && !strings.HasPrefix(rival, v1alpha1.FieldManager) {
			return &base, rival, nil
		}
	}
	return &base, "", nil
}

// writeContendedStatus writes, instead of the whole status that another writer keeps
// changing, only the operator's own conditions, ResourcesApplied saying why (Contended).
// It applies them under a field manager of their own (contendedStatusManager), so that
// nothing else changes: an apply under the operator's usual manager would give up every
// field of the other conditions it still co-owns, and leave the other writer's conditions
// without their status or reason.
func (r *GatewayReconciler) writeContendedStatus(ctx context.Context, gw *gatewayv1.Gateway, res *outcome.Result, message string, now metav1.Time) error {
	reported := *res
	reported.Report(outcome.Contended, message)
	desired := outcome.GatewayStatus(gw, &reported, status.ListenerInputs{}, r.Options.Revision)
	return r.writeOwnConditions(ctx, gw, desired.Conditions, now, &reported, contendedStatusManager(r.FieldManager))
}

// contendedStatusManager is the field manager of the operator's own conditions while it
// leaves the rest of a Gateway's status to another writer.
func contendedStatusManager(fieldManager string) string {
	return fieldManager + "-contended"
}

// listenerInputs reads what the listeners' status depends on: the attached HTTPRoutes, the
// ReferenceGrants and the referenced Secrets' verdicts.
func (r *GatewayReconciler) listenerInputs(ctx context.Context, gw *gatewayv1.Gateway) (status.ListenerInputs, error) {
	routes, err := r.routesOf(ctx, gw)
	if err != nil {
		return status.ListenerInputs{}, err
	}
	grants, err := referenceGrants(ctx, r.Client, gw)
	if err != nil {
		return status.ListenerInputs{}, err
	}
	certificates, err := r.certificates.States(ctx, status.PermittedCertificateSecrets(gw, grants))
	if err != nil {
		return status.ListenerInputs{}, err
	}
	return status.ListenerInputs{Routes: routes, NamespaceLabels: namespaceLabels(ctx, r.Client), Grants: grants, Certificates: certificates}, nil
}

// writeOwnConditions applies only the operator's own condition types, beside istiod, under
// the given field manager. Under the operator's usual one, the server-side apply also gives
// up any other part of the status it wrote before (in standalone mode), which istiod writes.
func (r *GatewayReconciler) writeOwnConditions(ctx context.Context, gw *gatewayv1.Gateway, all []metav1.Condition, now metav1.Time, res *outcome.Result, fieldManager string) error {
	var own []metav1.Condition
	for _, c := range all {
		if slices.Contains(status.OwnConditionTypes, c.Type) {
			own = append(own, c)
		}
	}
	own = status.MergeConditions(gw.Status.Conditions, own, now)
	if status.ConditionsUpToDate(gw.Status.Conditions, own) {
		return nil
	}
	statusAC := gatewayv1ac.GatewayStatus()
	for _, c := range own {
		statusAC.WithConditions(conditionAC(c))
	}
	// As in writeStatus: never a late write on a Gateway that changed meanwhile.
	ac := gatewayv1ac.Gateway(gw.Name, gw.Namespace).WithStatus(statusAC)
	if gw.ResourceVersion != "" {
		ac.WithResourceVersion(gw.ResourceVersion)
	}
	if err := r.Client.Status().Apply(ctx, ac, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("writing status of Gateway %s/%s: %w", gw.Namespace, gw.Name, err)
	}
	r.recordProblems(gw, own, res)
	return nil
}

// recordProblems emits Warning Events for each condition that turned bad or changed its
// message while bad, so that `kubectl describe gateway` tells the story once, not per loop.
// Dropped fields get one Event per ConfigMap, related to that ConfigMap.
func (r *GatewayReconciler) recordProblems(gw *gatewayv1.Gateway, conditions []metav1.Condition, res *outcome.Result) {
	for _, c := range conditions {
		bad := c.Status == metav1.ConditionFalse
		if c.Type == string(gatewayv1.GatewayConditionProgrammed) && c.Reason == string(gatewayv1.GatewayReasonAddressNotAssigned) {
			bad = false
		}
		// In standalone mode Accepted and Programmed already tell what ResourcesApplied tells.
		if c.Type == status.ConditionResourcesApplied && meta.FindStatusCondition(conditions, string(gatewayv1.GatewayConditionProgrammed)) != nil {
			bad = false
		}
		// istiod's deployment controller is one problem of the revision, told by one Event on
		// its Lease (istiodDeploymentWatch), not one per Gateway.
		if c.Reason == status.ReasonIstiodDeploymentController {
			bad = false
		}
		if !bad {
			continue
		}
		prev := meta.FindStatusCondition(gw.Status.Conditions, c.Type)
		if prev != nil && prev.Status == c.Status && prev.Reason == c.Reason && prev.Message == c.Message {
			continue
		}
		if c.Type != status.ConditionCustomizationsApplied || c.Reason == status.ReasonInvalidParameters || c.Reason == status.ReasonRevisionNotInstalled {
			r.Recorder.Eventf(gw, nil, corev1.EventTypeWarning, c.Reason, "Reconcile", "%s", status.Truncate(c.Message, status.MaxEventNote))
			continue
		}
		r.recordFindings(gw, res.Findings)
	}
}

func (r *GatewayReconciler) recordFindings(gw *gatewayv1.Gateway, findings []customize.Finding) {
	var sources, enforced []string
	bySource := map[string][]customize.Finding{}
	for _, f := range findings {
		if f.Rule != "" {
			// The class policy's findings are told together, each with its rule, so the
			// Gateway owner sees which rule of the platform team's applied.
			enforced = append(enforced, fmt.Sprintf("%s (%s)", f.Describe(), f.Rule))
			continue
		}
		if _, seen := bySource[f.Source]; !seen {
			sources = append(sources, f.Source)
		}
		bySource[f.Source] = append(bySource[f.Source], f)
	}
	if len(enforced) > 0 {
		r.Recorder.Eventf(gw, nil, corev1.EventTypeWarning, status.ReasonPolicyEnforced, "Customize",
			"%s", status.Truncate("The class policy dropped or lowered: "+strings.Join(enforced, "; "), status.MaxEventNote))
	}
	for _, source := range sources {
		summary := customize.Summary(bySource[source])
		if source == "" {
			r.Recorder.Eventf(gw, nil, corev1.EventTypeWarning, status.ReasonValuesAdjusted, "Customize",
				"%s", status.Truncate("Adjusted: "+summary, status.MaxEventNote))
			continue
		}
		ns, name, _ := strings.Cut(source, "/")
		related := &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		}
		r.Recorder.Eventf(gw, related, corev1.EventTypeWarning, status.ReasonFieldsNotAllowed, "Customize",
			"%s", status.Truncate(fmt.Sprintf("Not applied from ConfigMap %s: %s", source, summary), status.MaxEventNote))
	}
}

func (r *GatewayReconciler) routesOf(ctx context.Context, gw *gatewayv1.Gateway) ([]*gatewayv1.HTTPRoute, error) {
	list := &gatewayv1.HTTPRouteList{}
	if err := r.Client.List(ctx, list, client.MatchingFields{HTTPRouteParentIndex: gw.Namespace + "/" + gw.Name}); err != nil {
		return nil, fmt.Errorf("listing HTTPRoutes of Gateway %s/%s: %w", gw.Namespace, gw.Name, err)
	}
	out := make([]*gatewayv1.HTTPRoute, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out, nil
}

// namespaceLabels reads namespaces' labels from the metadata cache, for allowedRoutes
// selectors.
func namespaceLabels(ctx context.Context, reader client.Reader) status.NamespaceLabels {
	return func(namespace string) (labels.Set, bool) {
		ns := &metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		if err := reader.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
			return nil, false
		}
		return ns.Labels, true
	}
}
