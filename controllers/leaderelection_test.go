package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kubegate/istio-gateway-operator/test/apicounter"
)

// replica is one replica of a revision's operator with leader election on.
type replica struct {
	requests *apicounter.Counter
	elected  <-chan struct{}
	cancel   context.CancelFunc
	done     chan struct{}
}

const (
	haRevision      = "asm-1-30"
	haLeaseDuration = 4 * time.Second
)

func startReplica() *replica {
	GinkgoHelper()
	r := &replica{requests: apicounter.New(), done: make(chan struct{})}
	mgr, cancel := runInstance(haRevision, 30*time.Second, r.requests, r.done, func(o *ctrl.Options) {
		o.LeaderElection = true
		o.LeaderElectionID = "istio-gateway-operator-" + haRevision
		o.LeaderElectionNamespace = systemNamespace
		o.LeaseDuration = ptr.To(haLeaseDuration)
		o.RenewDeadline = ptr.To(3 * time.Second)
		o.RetryPeriod = ptr.To(500 * time.Millisecond)
		// A stopped leader does not release the Lease: the other replica must wait it
		// out, as after a crash.
		o.LeaderElectionReleaseOnCancel = false
	})
	r.elected, r.cancel = mgr.Elected(), cancel
	return r
}

func (r *replica) isLeader() bool {
	select {
	case <-r.elected:
		return true
	default:
		return false
	}
}

var _ = Describe("Two replicas with leader election", Ordered, func() {
	const ns = "leader-election"
	var first, second *replica

	AfterAll(func() {
		for _, r := range []*replica{first, second} {
			if r != nil {
				r.cancel()
				Eventually(r.done).Should(BeClosed())
			}
		}
		inst := &revisionInstance{revision: haRevision, cancel: func() {}, done: closedChannel()}
		inst.uninstall()
	})

	It("lets exactly one replica reconcile", func() {
		first, second = startReplica(), startReplica()
		Eventually(func() bool { return first.isLeader() || second.isLeader() }).Should(BeTrue())
		if second.isLeader() {
			first, second = second, first
		}
		convergedGateway(ns, "gw")
		Eventually(func(g Gomega) {
			g.Expect(deployment(g, ns, "gw-istio").Spec.Template.Spec.Containers[0].Image).To(Equal(proxyImageOf(haRevision)))
		}).Should(Succeed())
		Expect(second.isLeader()).To(BeFalse())
		Expect(second.requests.WritesIn(ns)).To(BeEmpty(), "the standby replica wrote")
	})

	It("hands over to the standby within the Lease duration when the leader stops, and converges pending work", func() {
		first.cancel()
		Eventually(first.done).Should(BeClosed())
		stopped := time.Now()
		// Work arrives while no replica leads.
		Expect(k8sClient.Create(ctx, httpGateway(ns, "gw-pending"))).To(Succeed())
		Eventually(second.isLeader, 2*haLeaseDuration+5*time.Second).Should(BeTrue())
		Expect(time.Since(stopped)).To(BeNumerically("<", 2*haLeaseDuration+5*time.Second))
		Eventually(func(g Gomega) {
			g.Expect(deployment(g, ns, "gw-pending-istio").Spec.Template.Spec.Containers[0].Image).To(Equal(proxyImageOf(haRevision)))
		}).Should(Succeed())
	})
})

func closedChannel() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}
