package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/kubegate/istio-gateway-operator/pkg/revision"
)

// IstiodDeploymentLeaseName is the Lease istiod's gateway deployment controller holds, per
// revision, in its namespace while it runs: the sign that it generates Gateways' objects.
func IstiodDeploymentLeaseName(rev string) string {
	return "istio-gateway-deployment-" + revision.Name(rev)
}

// istiodDeploymentWatch tells whether istiod's gateway deployment controller runs for this
// revision. It would take over every object the operator generates (it forces its apply on
// any object with the gateway.istio.io/managed label key), so while it runs the operator
// writes no object, says why on each Gateway, and records one Event for the whole episode.
type istiodDeploymentWatch struct {
	reader    client.Reader
	recorder  recorder.EventRecorder
	namespace string
	revision  string

	mu       sync.Mutex
	reported bool
}

// running returns a message naming the fix while istiod's deployment controller holds its
// Lease, and when to look again (the Lease's expiry); "" when it does not run.
func (w *istiodDeploymentWatch) running(ctx context.Context, now time.Time) (message string, recheck time.Duration, err error) {
	name := IstiodDeploymentLeaseName(w.revision)
	lease := &coordinationv1.Lease{}
	switch err := w.reader.Get(ctx, types.NamespacedName{Namespace: w.namespace, Name: name}, lease); {
	case apierrors.IsNotFound(err):
		w.clear()
		return "", 0, nil
	case err != nil:
		return "", 0, fmt.Errorf("reading Lease %s/%s: %w", w.namespace, name, err)
	}
	until, renewed := revision.LeaseHeldUntil(*lease)
	if !renewed || !until.After(now) || ptr.Deref(lease.Spec.HolderIdentity, "") == "" {
		w.clear()
		return "", 0, nil
	}
	message = fmt.Sprintf("istiod's own gateway deployment controller runs for revision %s (it holds Lease %s/%s) and would take over every generated object: "+
		"set PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER=false on istiod of revision %s; until then this operator writes no object",
		revision.Name(w.revision), w.namespace, name, revision.Name(w.revision))
	w.mu.Lock()
	first := !w.reported
	w.reported = true
	w.mu.Unlock()
	if first {
		w.recorder.Eventf(lease, nil, corev1.EventTypeWarning, "IstiodDeploymentController", "StandBack", "%s", message)
	}
	return message, until.Sub(now) + time.Second, nil
}

func (w *istiodDeploymentWatch) clear() {
	w.mu.Lock()
	w.reported = false
	w.mu.Unlock()
}
