package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var _ = Describe("A customization that changes a field the API server will not change in place", func() {
	const ns = "immutable"
	loadBalancerClass := func(class string) map[string]string {
		return map[string]string{"service": "spec:\n  type: LoadBalancer\n  loadBalancerClass: " + class + "\n"}
	}

	It("is reported on the Gateway, naming the field and the way forward, with nothing deleted and no retry loop", func() {
		createNamespace(ns)
		Expect(k8sClient.Create(ctx, configMap(ns, "gw-options", loadBalancerClass("example.com/first")))).To(Succeed())
		gw := httpGateway(ns, "gw")
		gw.Spec.Infrastructure = parametersRef("gw-options")
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		DeferCleanup(func() {
			Expect(k8sClient.Delete(ctx, &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"}})).To(Succeed())
		})
		var uid string
		Eventually(func(g Gomega) {
			svc := service(g, ns, "gw-istio")
			g.Expect(svc.Spec.LoadBalancerClass).To(HaveValue(Equal("example.com/first")))
			uid = string(svc.UID)
		}).Should(Succeed())

		By("changing the class of the existing load balancer")
		updateConfigMap(ns, "gw-options", loadBalancerClass("example.com/second"))
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			programmed := condition(gw, "Programmed")
			g.Expect(programmed).To(haveCondition(metav1.ConditionFalse, "ImmutableField", gw.Generation))
			g.Expect(programmed.Message).To(And(
				ContainSubstring("Service immutable/gw-istio: spec.loadBalancerClass cannot change on the existing object, which was left as it is"),
				ContainSubstring("revert the change, or delete Service immutable/gw-istio"),
				ContainSubstring("a new load balancer is provisioned for it, whose address may differ")))
			g.Expect(condition(gw, "gateway.istio.io/ResourcesApplied")).To(haveCondition(metav1.ConditionFalse, "ImmutableField", gw.Generation))
		}).Should(Succeed())
		Eventually(func(g Gomega) []string { return eventNotes(g, ns, "gw") }).
			Should(ContainElement(ContainSubstring("spec.loadBalancerClass cannot change")))

		By("leaving the Service as it is, and not retrying a change the API server will refuse again")
		svc := service(Default, ns, "gw-istio")
		Expect(string(svc.UID)).To(Equal(uid))
		Expect(svc.Spec.LoadBalancerClass).To(HaveValue(Equal("example.com/first")))
		Eventually(func(g Gomega) {
			operatorRequests.Reset()
			g.Consistently(func() map[string]int { return operatorRequests.WritesIn(ns) }, "3s").Should(BeEmpty())
		}, "30s").Should(Succeed())

		By("recovering when the change is reverted")
		updateConfigMap(ns, "gw-options", loadBalancerClass("example.com/first"))
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "gateway.istio.io/ResourcesApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", gw.Generation))
		}).Should(Succeed())
	})
})
