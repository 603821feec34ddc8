package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
	"github.com/kubegate/istio-gateway-operator/test/apicounter"
)

// istiodFieldManager is the manager istiod's status writes are recorded under (its
// binary's name, from the user agent).
const istiodFieldManager = "pilot-discovery"

var _ = Describe("Beside istiod", Ordered, func() {
	const ns, rev = "beside-istiod", "beside"
	var requests *apicounter.Counter

	BeforeAll(func() {
		createNamespace(ns)
		requests = apicounter.New()
		done := make(chan struct{})
		_, cancel := runInstance(rev, 10*time.Second, requests, done, nil, func(o *controllers.Options) {
			o.StatusMode = controllers.StatusBesideIstiod
		})
		DeferCleanup(func() {
			cancel()
			Eventually(done).Should(BeClosed())
			lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: controllers.RevisionLeaseName(rev)}}
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, lease))).To(Succeed())
		})
		Expect(k8sClient.Create(ctx, configMap(ns, "options", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 4\n"}))).To(Succeed())
		gw := httpGateway(ns, "gw")
		gw.Labels = map[string]string{v1alpha1.RevisionLabel: rev}
		gw.Spec.Infrastructure = parametersRef("options")
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
	})

	It("generates the objects and writes only its own conditions, leaving Accepted, Programmed, listeners and addresses to istiod", func() {
		Eventually(func(g Gomega) {
			g.Expect(hpa(g, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(4))
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "gateway.istio.io/ResourcesApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", 1))
			g.Expect(condition(gw, "gateway.istio.io/CustomizationsApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", 1))
			// What the API server defaults, untouched.
			g.Expect(condition(gw, "Accepted")).To(HaveField("Reason", "Pending"))
			g.Expect(condition(gw, "Programmed")).To(HaveField("Reason", "Pending"))
			g.Expect(gw.Status.Listeners).To(BeEmpty())
			g.Expect(gw.Status.Addresses).To(BeEmpty())
		}).Should(Succeed())
	})

	It("never writes over istiod's conditions, and writes once when its own change", func() {
		By("playing istiod: a full status update, as it writes it")
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			for _, c := range []metav1.Condition{
				{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: "Resource accepted"},
				{Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed", Message: "Resource programmed, assigned to service(s) gw-istio.beside-istiod.svc.cluster.local:80"},
			} {
				c.ObservedGeneration, c.LastTransitionTime = gw.Generation, metav1.Now()
				setCondition(gw, c)
			}
			gw.Status.Addresses = []gatewayv1.GatewayStatusAddress{{Type: ptr.To(gatewayv1.HostnameAddressType), Value: "gw-istio.beside-istiod.svc.cluster.local"}}
			g.Expect(k8sClient.Status().Update(ctx, gw, client.FieldOwner(istiodFieldManager))).To(Succeed())
		}).Should(Succeed())

		By("changing what only the operator reports: which ConfigMap customizes the Gateway")
		Expect(k8sClient.Create(ctx, configMap(ns, "options-2", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 6\n"}))).To(Succeed())
		requests.Reset()
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) { gw.Spec.Infrastructure = parametersRef("options-2") })
		Eventually(func(g Gomega) {
			customized := condition(gateway(g, ns, "gw"), "gateway.istio.io/CustomizationsApplied")
			g.Expect(customized.Message).To(HaveSuffix("beside-istiod/options-2"))
			g.Expect(customized.ObservedGeneration).To(BeEquivalentTo(2))
			g.Expect(hpa(g, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(6))
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "Accepted").Message).To(Equal("Resource accepted"))
			g.Expect(condition(gw, "Programmed").Message).To(HavePrefix("Resource programmed"))
			g.Expect(gw.Status.Addresses).To(HaveLen(1))
			// One status write for the change; a second, identical one when the HPA's own
			// event is reconciled before the first write reaches the cache.
			writes := requests.WritesIn(ns)
			g.Expect(writes).To(HaveKeyWithValue("PATCH horizontalpodautoscalers", 1))
			g.Expect(writes).To(HaveKeyWithValue("PATCH gateways/status", BeNumerically("<=", 2)))
			g.Expect(writes).To(HaveLen(2))
		}).Should(Succeed())
	})

	It("stands back while istiod's gateway deployment controller runs: one Event, a condition naming the fix, no object writes", func() {
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: controllers.IstiodDeploymentLeaseName(rev)},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("istiod-5c9d"), LeaseDurationSeconds: ptr.To(int32(30)),
				RenewTime: ptr.To(metav1.NewMicroTime(time.Now()))},
		}
		Expect(k8sClient.Create(ctx, lease)).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(gateway(g, ns, "gw"), "gateway.istio.io/ResourcesApplied")
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "IstiodDeploymentController", 2))
			g.Expect(c.Message).To(ContainSubstring("set PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER=false on istiod of revision beside"))
			g.Expect(eventsFor(g, systemNamespace, lease.Name)).To(ContainElement(HaveField("Reason", "IstiodDeploymentController")))
		}).Should(Succeed())

		By("renewing the Lease as istiod does, and changing a customization meanwhile")
		requests.Reset()
		updateConfigMap(ns, "options-2", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 3\n"})
		renew := func() {
			Eventually(func(g Gomega) {
				fresh := &coordinationv1.Lease{}
				g.Expect(k8sClient.Get(ctx, key(systemNamespace, lease.Name), fresh)).To(Succeed())
				fresh.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
				g.Expect(k8sClient.Update(ctx, fresh)).To(Succeed())
			}).Should(Succeed())
		}
		renew()
		Consistently(func(g Gomega) {
			g.Expect(requests.WritesIn(ns)).To(BeEmpty(), "no object and no status write while istiod deploys")
			g.Expect(hpa(g, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(6))
		}).Should(Succeed())
		renew()
		Expect(eventsFor(Default, systemNamespace, lease.Name)).To(HaveLen(1), "one Event for the whole episode")

		By("resuming once istiod's controller is off (its Lease gone)")
		Expect(k8sClient.Delete(ctx, lease)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(condition(gateway(g, ns, "gw"), "gateway.istio.io/ResourcesApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", 2))
			g.Expect(hpa(g, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(3))
		}).Should(Succeed())
	})
})

// setCondition replaces or adds a condition by type, as a status writer does.
func setCondition(gw *gatewayv1.Gateway, c metav1.Condition) {
	for i := range gw.Status.Conditions {
		if gw.Status.Conditions[i].Type == c.Type {
			gw.Status.Conditions[i] = c
			return
		}
	}
	gw.Status.Conditions = append(gw.Status.Conditions, c)
}

