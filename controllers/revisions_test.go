package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
	"github.com/kubegate/istio-gateway-operator/test/apicounter"
)

// revisionInstance is one revision's operator, running in this test process with its
// requests counted.
type revisionInstance struct {
	revision string
	image    string
	requests *apicounter.Counter
	cancel   context.CancelFunc
	done     chan struct{}
}

func proxyImageOf(rev string) string {
	return "docker.io/istio/proxyv2:" + strings.ReplaceAll(strings.TrimPrefix(rev, "asm-"), "-", ".") + ".0"
}

// startRevision runs a revision's operator the way cmd/manager does, with fast revision
// discovery; adjust changes its options.
func startRevision(rev string, adjust ...func(*controllers.Options)) *revisionInstance {
	GinkgoHelper()
	inst := &revisionInstance{revision: rev, image: proxyImageOf(rev), requests: apicounter.New(), done: make(chan struct{})}
	_, inst.cancel = runInstance(rev, 10*time.Second, inst.requests, inst.done, nil, adjust...)
	return inst
}

// runInstance starts, in this process, an operator instance of a revision with fast
// revision discovery and its requests counted; tune adjusts the manager's options (a
// WebhookServer set there serves the admission webhooks too), adjust the operator's. It returns the manager and
// the function that stops it; done closes when it has stopped.
func runInstance(rev string, leaseDuration time.Duration, requests *apicounter.Counter, done chan struct{},
	tune func(*ctrl.Options), adjust ...func(*controllers.Options)) (ctrl.Manager, context.CancelFunc) {
	GinkgoHelper()
	opts := controllers.Options{
		GatewayClassName: v1alpha1.DefaultGatewayClassName,
		SystemNamespace:  systemNamespace,
		Revision:         rev,
		ProxyImage:       proxyImageOf(rev),
		RevisionSettle:   time.Second, RevisionRenewInterval: time.Second, RevisionLeaseDuration: leaseDuration,
	}
	for _, a := range adjust {
		a(&opts)
	}
	mgrOpts := ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions(opts),
		// Several instances share this process; their controllers have the same names.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	if tune != nil {
		tune(&mgrOpts)
	}
	mgr, err := ctrl.NewManager(requests.Wrap(restConfig), mgrOpts)
	Expect(err).NotTo(HaveOccurred())
	Expect(controllers.SetupWithManager(mgr, opts)).To(Succeed())
	if mgrOpts.WebhookServer != nil {
		Expect(controllers.SetupWebhooks(mgr, opts)).To(Succeed())
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return mgr, cancel
}

// uninstall stops the instance and deletes its Lease, as removing the revision does.
func (inst *revisionInstance) uninstall() {
	GinkgoHelper()
	inst.cancel()
	Eventually(inst.done).Should(BeClosed())
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: controllers.RevisionLeaseName(inst.revision)}}
	Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, lease))).To(Succeed())
}

// expectOwner waits until the Gateway's resources are rendered by rev (its image, istiod
// and label) with the Deployment and Service UIDs unchanged, and the status names it.
func expectOwner(ns, name string, inst *revisionInstance, uids map[string]types.UID) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		d := deployment(g, ns, name+"-istio")
		g.Expect(d.UID).To(Equal(uids["Deployment"]), "the Deployment must be handed over, not recreated")
		g.Expect(d.Labels).To(HaveKeyWithValue(v1alpha1.RevisionLabel, inst.revision))
		proxy := d.Spec.Template.Spec.Containers[0]
		g.Expect(proxy.Image).To(Equal(inst.image))
		g.Expect(proxy.Env).To(ContainElement(corev1.EnvVar{Name: "CA_ADDR", Value: "istiod-" + inst.revision + ".aks-istio-system.svc:15012"}))
		g.Expect(managers(d)).To(ConsistOf(v1alpha1.FieldManagerFor(inst.revision)), "the previous owner's fields are released")
		svc := service(g, ns, name+"-istio")
		g.Expect(svc.UID).To(Equal(uids["Service"]), "the Service must be handed over, not recreated")
		g.Expect(svc.Labels).To(HaveKeyWithValue(v1alpha1.RevisionLabel, inst.revision))
		gw := gateway(g, ns, name)
		g.Expect(condition(gw, "Accepted")).To(haveCondition(metav1.ConditionTrue, "Accepted", gw.Generation))
		g.Expect(condition(gw, "Accepted").Message).To(Equal("Resources are generated by revision " + inst.revision))
	}).Should(Succeed())
}

// acceptedWriters lists the field managers that own the message of a Gateway's Accepted
// condition: the ones whose write it shows (a field both wrote with the same value, its
// type say, stays shared, as server-side apply does).
func acceptedWriters(g Gomega, gw *gatewayv1.Gateway) []string {
	var out []string
	for _, e := range gw.ManagedFields {
		if e.Subresource != "status" || e.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Status struct {
				Conditions map[string]map[string]json.RawMessage `json:"f:conditions"`
			} `json:"f:status"`
		}
		g.Expect(json.Unmarshal(e.FieldsV1.Raw, &fields)).To(Succeed())
		if _, ok := fields.Status.Conditions[`k:{"type":"Accepted"}`]["f:message"]; ok {
			out = append(out, e.Manager)
		}
	}
	return out
}

// managers lists the operator field managers that own fields of an object.
func managers(obj client.Object) []string {
	var out []string
	for _, e := range obj.GetManagedFields() {
		if strings.HasPrefix(e.Manager, v1alpha1.FieldManager) && e.Subresource == "" {
			out = append(out, e.Manager)
		}
	}
	return out
}

// expectNoWritesIn asserts that an instance leaves a namespace alone.
func expectNoWritesIn(inst *revisionInstance, ns string) {
	GinkgoHelper()
	inst.requests.Reset()
	Consistently(func() map[string]int { return inst.requests.WritesIn(ns) }, "3s").Should(BeEmpty(),
		"revision %s must not write to a Gateway it does not own", inst.revision)
}

func labelRevision(ns, name, rev string) {
	updateGateway(ns, name, func(gw *gatewayv1.Gateway) {
		if rev == "" {
			delete(gw.Labels, v1alpha1.RevisionLabel)
			return
		}
		if gw.Labels == nil {
			gw.Labels = map[string]string{}
		}
		gw.Labels[v1alpha1.RevisionLabel] = rev
	})
}

var _ = Describe("Revision ownership", Ordered, func() {
	const ns = "revisions"
	var (
		old, updated *revisionInstance
		uids         = map[string]types.UID{}
	)

	AfterAll(func() {
		for _, inst := range []*revisionInstance{old, updated} {
			if inst != nil {
				inst.uninstall()
			}
		}
	})

	It("gives an unlabelled Gateway to the only installed revision", func() {
		old = startRevision("asm-1-25")
		createNamespace(ns)
		Expect(k8sClient.Create(ctx, httpGateway(ns, "gw"))).To(Succeed())
		Eventually(func(g Gomega) {
			d := deployment(g, ns, "gw-istio")
			g.Expect(d.Labels).To(HaveKeyWithValue(v1alpha1.RevisionLabel, "asm-1-25"))
			uids["Deployment"] = d.UID
			uids["Service"] = service(g, ns, "gw-istio").UID
		}).Should(Succeed())
		expectOwner(ns, "gw", old, uids)
		By("reaching a steady state that costs the owner no write")
		Eventually(func(g Gomega) {
			old.requests.Reset()
			g.Consistently(func() map[string]int { return old.requests.WritesIn(ns) }, "2s").Should(BeEmpty())
		}, "30s").Should(Succeed())
	})

	It("hands the Gateway to a newly installed higher revision without recreating anything", func() {
		updated = startRevision("asm-1-26")
		expectOwner(ns, "gw", updated, uids)
		Expect(updated.requests.RefusedWrites()).To(BeEmpty(), "the new owner applies first and releases the old owner's fields after: no write is refused")
		expectNoWritesIn(old, ns)
	})

	It("pins a labelled Gateway to the older revision", func() {
		old.requests.Reset()
		labelRevision(ns, "gw", "asm-1-25")
		expectOwner(ns, "gw", old, uids)
		Expect(old.requests.RefusedWrites()).To(BeEmpty(), "no write is refused in the hand-over")
		expectNoWritesIn(updated, ns)
	})

	It("gives the Gateway back to the higher revision when the label is removed", func() {
		updated.requests.Reset()
		labelRevision(ns, "gw", "")
		expectOwner(ns, "gw", updated, uids)
		Expect(updated.requests.RefusedWrites()).To(BeEmpty(), "no write is refused in the hand-over")
		expectNoWritesIn(old, ns)
	})

	It("leaves a Gateway labelled for a revision that is not installed to no one, and says so", func() {
		labelRevision(ns, "gw", "asm-1-24")
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			accepted := condition(gw, "Accepted")
			g.Expect(accepted).To(haveCondition(metav1.ConditionFalse, "RevisionNotInstalled", gw.Generation))
			g.Expect(accepted.Message).To(ContainSubstring("istio.io/rev asm-1-24 names a revision that is not installed (installed: default, asm-1-25, asm-1-26)"))
		}).Should(Succeed())
		before := deployment(Default, ns, "gw-istio").ResourceVersion
		expectNoWritesIn(old, ns)
		Consistently(func(g Gomega) {
			g.Expect(deployment(g, ns, "gw-istio").ResourceVersion).To(Equal(before))
		}).Should(Succeed())
		labelRevision(ns, "gw", "")
		expectOwner(ns, "gw", updated, uids)
	})

	It("settles every quick relabelling on the right owner, with one status writer", func() {
		notInstalled := func(g Gomega) {
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "Accepted")).To(haveCondition(metav1.ConditionFalse, "RevisionNotInstalled", gw.Generation),
				"labels %v, Accepted %q written by %v", gw.Labels, condition(gw, "Accepted").Message, acceptedWriters(g, gw))
			g.Expect(acceptedWriters(g, gw)).To(ConsistOf(v1alpha1.FieldManagerFor(updated.revision)), "the reporting revision alone")
		}
		for round := range 10 {
			By(fmt.Sprintf("round %d: pinned to the old revision, then at once to one not installed", round+1))
			labelRevision(ns, "gw", "asm-1-25")
			labelRevision(ns, "gw", "asm-1-24")
			Eventually(notInstalled).Should(Succeed())
			Consistently(notInstalled, "2s").Should(Succeed(), "no late write of the old owner wins")

			By(fmt.Sprintf("round %d: pinned to the old revision, then at once unlabelled", round+1))
			labelRevision(ns, "gw", "asm-1-25")
			labelRevision(ns, "gw", "")
			expectOwner(ns, "gw", updated, uids)
			Eventually(func(g Gomega) {
				g.Expect(acceptedWriters(g, gateway(g, ns, "gw"))).To(ConsistOf(v1alpha1.FieldManagerFor(updated.revision)))
			}).Should(Succeed())
		}
	})

	It("keeps the Gateway with the new revision when the old one is uninstalled", func() {
		old.uninstall()
		old = nil
		expectOwner(ns, "gw", updated, uids)
	})

	It("rolls back: removing the new revision hands its Gateways to the old one", func() {
		old = startRevision("asm-1-25")
		expectNoWritesIn(old, ns)
		updated.uninstall()
		updated = nil
		expectOwner(ns, "gw", old, uids)
	})

	It("never lets two instances started at the same moment both claim a Gateway", func() {
		old.uninstall()
		old = nil
		const fresh = "revisions-race"
		createNamespace(fresh)
		Expect(k8sClient.Create(ctx, httpGateway(fresh, "gw"))).To(Succeed())
		// The default revision of the suite's own operator has it until the others arrive.
		Eventually(func(g Gomega) { deployment(g, fresh, "gw-istio") }).Should(Succeed())

		// "The same moment" means each instance's Lease is there before the other decides
		// anything: a settle far longer than the instances' start-up skew on a loaded
		// machine, and the Leases' creation times checked against it, so a slow start is
		// told as such rather than as a double claim.
		const settle = 5 * time.Second
		started := make(chan *revisionInstance, 2)
		for _, rev := range []string{"asm-1-25", "asm-1-26"} {
			go func() {
				defer GinkgoRecover()
				started <- startRevision(rev, func(o *controllers.Options) { o.RevisionSettle = settle })
			}()
		}
		a, b := <-started, <-started
		if a.revision == "asm-1-26" {
			a, b = b, a
		}
		old, updated = a, b
		created := map[string]time.Time{}
		Eventually(func(g Gomega) {
			for _, inst := range []*revisionInstance{old, updated} {
				lease := &coordinationv1.Lease{}
				g.Expect(k8sClient.Get(ctx, key(systemNamespace, controllers.RevisionLeaseName(inst.revision)), lease)).To(Succeed())
				created[inst.revision] = lease.CreationTimestamp.Time
			}
		}).Should(Succeed())
		skew := created[old.revision].Sub(created[updated.revision]).Abs()
		Expect(skew).To(BeNumerically("<", settle-time.Second), "the two instances did not start at the same moment: their Leases are %s apart", skew)
		Eventually(func(g Gomega) {
			g.Expect(deployment(g, fresh, "gw-istio").Spec.Template.Spec.Containers[0].Image).To(Equal(updated.image))
		}).Should(Succeed())
		Expect(old.requests.WritesIn(fresh)).To(BeEmpty(), "the lower revision wrote to a Gateway the higher one owns")
		expectNoWritesIn(old, fresh)
	})
})
