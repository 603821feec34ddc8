package faults_test

import (
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/test/apicounter"
)

var _ = Describe("The API server stopped and restarted", func() {
	It("in the middle of a 1,000-Gateway convergence: all converge afterwards, nothing duplicated", func(ctx SpecContext) {
		const n = 1000
		ns := newNamespace(ctx, "faults-restart")
		writesBefore := objectWrites(ns)
		unreachableBefore := faults.unreachable.Load()

		By("creating 1,000 Gateways from 8 clients")
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				defer GinkgoRecover()
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					Expect(k8sClient.Create(ctx, newGateway(ns, gatewayName(i)))).To(Succeed())
				}
			})
		}
		wg.Wait()
		started := time.Now()

		By("stopping kube-apiserver once a quarter are Programmed")
		Eventually(func() (int, error) { return programmed(ctx, ns) }, 2*time.Minute, 500*time.Millisecond).
			Should(BeNumerically(">=", n/4))
		before, err := programmed(ctx, ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(before).To(BeNumerically("<", n), "the outage must fall in the middle of the convergence")
		Expect(cluster.StopAPIServer()).To(Succeed())
		stopped := time.Now()
		Consistently(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: gatewayName(0)}, &gatewayv1.Gateway{})
		}, 10*time.Second, time.Second).ShouldNot(Succeed(), "the API server is down")
		Expect(cluster.StartAPIServer(ctx)).To(Succeed())
		outage := time.Since(stopped)

		By("converging every Gateway after the restart")
		Eventually(func() (int, error) { return programmed(ctx, ns) }, 4*time.Minute, time.Second).Should(Equal(n))
		converged := time.Since(started)

		By("having exactly one object of each generated kind per Gateway, owned by it")
		var gateways gatewayv1.GatewayList
		Expect(k8sClient.List(ctx, &gateways, client.InNamespace(ns))).To(Succeed())
		Expect(gateways.Items).To(HaveLen(n))
		uids := map[string]types.UID{}
		for _, gw := range gateways.Items {
			Expect(gw.Generation).To(Equal(int64(1)), "the operator never writes a Gateway's spec")
			uids[gw.Name+"-"+v1alpha1.GeneratedNameSuffix] = gw.UID
		}
		objects, err := generatedObjects(ctx, ns)
		Expect(err).NotTo(HaveOccurred())
		for kind, items := range objects {
			Expect(items).To(HaveLen(n), kind)
			for _, o := range items {
				Expect(o.OwnerReferences).To(HaveLen(1), "%s %s", kind, o.Name)
				Expect(o.OwnerReferences[0].UID).To(Equal(uids[o.Name]), "%s %s is owned by its Gateway", kind, o.Name)
			}
		}

		By("going quiet afterwards")
		writes := objectWrites(ns) - writesBefore
		atConvergence := requests.WritesIn(ns)
		Consistently(func() int { return objectWrites(ns) - writesBefore }, 5*time.Second, 500*time.Millisecond).Should(Equal(writes),
			func() string {
				return "writes after every Gateway was Programmed:\n" + apicounter.Format(apicounter.Delta(requests.WritesIn(ns), atConvergence))
			})
		// Write attempts are counted on the client side; those that found the API server
		// down (no HTTP answer) are counted apart.
		unreachable := int(faults.unreachable.Load() - unreachableBefore)
		// What reached the API server is about what a fault-free convergence costs (6.00
		// per Gateway measured): no retry storm after the restart. The bound leaves room for
		// a Pending status and its recovery per Gateway, should the warming-up API server
		// refuse a write of one that was already failing before the outage.
		Expect(writes-unreachable).To(BeNumerically("<=", n*(writesPerGateway+2)), "writes that reached the API server")
		GinkgoWriter.Printf("%d Gateways: %d Programmed before the outage of %s; all Programmed %s after creation; "+
			"%d write attempts, %d of them while the API server was down; %.2f writes per Gateway reached it\n",
			n, before, outage.Round(100*time.Millisecond), converged.Round(100*time.Millisecond), writes, unreachable,
			float64(writes-unreachable)/n)
		AddReportEntry("API server restart", map[string]any{
			"gateways": n, "programmed before the outage": before, "outage": outage.Round(100 * time.Millisecond).String(),
			"all programmed after": converged.Round(100 * time.Millisecond).String(), "write attempts": writes,
			"attempts while down": unreachable,
		})
	})
})
