package revision

import (
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

func TestInstalledCountsOnlyLeasesStillHeld(t *testing.T) {
	now := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	lease := func(rev string, renewed *time.Time, seconds int32) coordinationv1.Lease {
		l := coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{}}}
		if rev != "" {
			l.Labels[v1alpha1.RevisionLeaseLabel] = rev
		}
		if renewed != nil {
			l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(*renewed))
		}
		l.Spec.LeaseDurationSeconds = ptr.To(seconds)
		return l
	}
	recent, stale := now.Add(-5*time.Second), now.Add(-time.Minute)
	leases := []coordinationv1.Lease{
		lease("asm-1-26", &recent, 15),
		lease("asm-1-25", &recent, 15),
		lease("asm-1-25", &recent, 15), // two instances of one revision count once
		lease("asm-1-24", &stale, 15),  // expired: its instances stopped
		lease("asm-1-27", nil, 15),     // never renewed counts as expired
		lease("", &recent, 15),         // not a revision Lease
	}
	if got, want := Installed(leases, now), []string{"asm-1-25", "asm-1-26"}; !slices.Equal(got, want) {
		t.Errorf("installed %q, want %q (oldest first)", got, want)
	}
	if until, ok := LeaseHeldUntil(leases[0]); !ok || !until.Equal(recent.Add(15*time.Second)) {
		t.Errorf("held until %v %v, want %v", until, ok, recent.Add(15*time.Second))
	}
}
