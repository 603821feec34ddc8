package revision

import (
	"slices"
	"sort"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// LeaseHeldUntil is when a Lease expires unless renewed; ok is false for a Lease never
// renewed (no renewTime), which counts as expired. Revision Leases and istiod's deployment
// controller Lease are read by this one rule.
func LeaseHeldUntil(l coordinationv1.Lease) (until time.Time, ok bool) {
	if l.Spec.RenewTime == nil {
		return time.Time{}, false
	}
	return l.Spec.RenewTime.Add(time.Duration(ptr.Deref(l.Spec.LeaseDurationSeconds, 0)) * time.Second), true
}

// Installed are the revisions whose Lease has not expired at now, oldest first: every
// instance computes the same list from the same Leases, so they agree on the owners.
func Installed(leases []coordinationv1.Lease, now time.Time) []string {
	var out []string
	for _, l := range leases {
		name := l.Labels[v1alpha1.RevisionLeaseLabel]
		if name == "" {
			continue
		}
		if until, renewed := LeaseHeldUntil(l); !renewed || until.Before(now) {
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	sort.Slice(out, func(i, j int) bool { return Less(out[i], out[j]) })
	return out
}
