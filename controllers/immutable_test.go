package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

var _ = Describe("A customization that changes a field the API server will not change in place", func() {
	const ns = "immutable"
	loadBalancerClass := func(class string) map[string]string {
		return map[string]string{"service": "spec:\n  type: LoadBalancer\n  loadBalancerClass: " + class + "\n"}
	}
	// serving creates, in a namespace of its own, Gateway gw with the given annotations,
	// whose Service has load balancer class example.com/first, deleted after the spec.
	serving := func(namespace string, annotations map[string]string) {
		GinkgoHelper()
		createNamespace(namespace)
		Expect(k8sClient.Create(ctx, configMap(namespace, "gw-options", loadBalancerClass("example.com/first")))).To(Succeed())
		gw := httpGateway(namespace, "gw")
		gw.Annotations = annotations
		gw.Spec.Infrastructure = parametersRef("gw-options")
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		DeferCleanup(func() {
			Expect(k8sClient.Delete(ctx, &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "gw"}})).To(Succeed())
		})
	}

	It("is reported on the Gateway, naming the field and the way forward, with nothing deleted and no retry loop", func() {
		serving(ns, nil)
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

	It("replaces the Service in stages when the Gateway opts in, asking for the address the old one had, and says whether it was kept", func() {
		const ns = "immutable-replace"
		serving(ns, map[string]string{v1alpha1.ReplaceOnImmutableChangeAnnotation: "true"})
		var old *corev1.Service
		Eventually(func(g Gomega) {
			old = service(g, ns, "gw-istio")
			g.Expect(old.Spec.LoadBalancerClass).To(HaveValue(Equal("example.com/first")))
		}).Should(Succeed())
		setLoadBalancerIP(ns, "gw-istio", "172.18.255.200")
		By("holding the old Service with a finalizer, as a cloud's load balancer controller does until it has released the load balancer")
		Eventually(func(g Gomega) {
			svc := service(g, ns, "gw-istio")
			svc.Finalizers = append(svc.Finalizers, "example.com/load-balancer-cleanup")
			g.Expect(k8sClient.Update(ctx, svc)).To(Succeed())
		}).Should(Succeed())

		By("changing the class of the load balancer")
		updateConfigMap(ns, "gw-options", loadBalancerClass("example.com/second"))
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			g.Expect(gw.Annotations).To(HaveKeyWithValue(v1alpha1.KeptAddressAnnotation, "172.18.255.200"))
			g.Expect(condition(gw, "gateway.istio.io/ResourcesApplied")).To(haveCondition(metav1.ConditionFalse, "Replacing", gw.Generation))
			programmed := condition(gw, "Programmed")
			g.Expect(programmed).To(haveCondition(metav1.ConditionFalse, "Pending", gw.Generation))
			g.Expect(programmed.Message).To(ContainSubstring("Service immutable-replace/gw-istio is being replaced to change spec.loadBalancerClass"))
			g.Expect(service(g, ns, "gw-istio").DeletionTimestamp).NotTo(BeNil())
		}).Should(Succeed())

		By("creating the new Service once the old one is gone, asking for the old address")
		Eventually(func(g Gomega) {
			svc := service(g, ns, "gw-istio")
			svc.Finalizers = nil
			g.Expect(k8sClient.Update(ctx, svc)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			svc := service(g, ns, "gw-istio")
			g.Expect(svc.UID).NotTo(Equal(old.UID))
			g.Expect(svc.Spec.LoadBalancerClass).To(HaveValue(Equal("example.com/second")))
			g.Expect(svc.Spec.LoadBalancerIP).To(Equal("172.18.255.200"))
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "gateway.istio.io/ResourcesApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", gw.Generation))
			g.Expect(condition(gw, "gateway.istio.io/AddressKept")).To(haveCondition(metav1.ConditionUnknown, "Pending", gw.Generation))
		}).Should(Succeed())
		Eventually(func(g Gomega) []string { return eventNotes(g, ns, "gw") }).
			Should(ContainElement(ContainSubstring("Deleted Service immutable-replace/gw-istio to change spec.loadBalancerClass")))

		By("saying the address was kept when the load balancer gives it back")
		setLoadBalancerIP(ns, "gw-istio", "172.18.255.200")
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "gateway.istio.io/AddressKept")).To(haveCondition(metav1.ConditionTrue, "Kept", gw.Generation))
			g.Expect(condition(gw, "Programmed")).To(haveCondition(metav1.ConditionTrue, "Programmed", gw.Generation))
			g.Expect(gw.Status.Addresses).To(ConsistOf(HaveField("Value", "172.18.255.200")))
		}).Should(Succeed())

		By("saying the address was lost when the load balancer hands out another one, with a Warning")
		setLoadBalancerIP(ns, "gw-istio", "172.18.255.201")
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			lost := condition(gw, "gateway.istio.io/AddressKept")
			g.Expect(lost).To(haveCondition(metav1.ConditionFalse, "Lost", gw.Generation))
			g.Expect(lost.Message).To(ContainSubstring("assigned 172.18.255.201 instead of 172.18.255.200"))
		}).Should(Succeed())
		Eventually(func(g Gomega) []string { return eventNotes(g, ns, "gw") }).
			Should(ContainElement(ContainSubstring("clients of 172.18.255.200 must move to the new address")))

		By("dropping the condition, and the request for the address, when the user removes the annotation")
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) { delete(gw.Annotations, v1alpha1.KeptAddressAnnotation) })
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			g.Expect(meta.FindStatusCondition(gw.Status.Conditions, "gateway.istio.io/AddressKept")).To(BeNil())
			g.Expect(service(g, ns, "gw-istio").Spec.LoadBalancerIP).To(BeEmpty())
		}).Should(Succeed())
	})

	It("tells the way to opt in when it only reports", func() {
		const ns = "immutable-hint"
		serving(ns, nil)
		Eventually(func(g Gomega) {
			g.Expect(service(g, ns, "gw-istio").Spec.LoadBalancerClass).To(HaveValue(Equal("example.com/first")))
		}).Should(Succeed())
		updateConfigMap(ns, "gw-options", loadBalancerClass("example.com/second"))
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "Programmed").Message).To(ContainSubstring("or annotate the Gateway " + v1alpha1.ReplaceOnImmutableChangeAnnotation + "=true"))
			g.Expect(gw.Annotations).NotTo(HaveKey(v1alpha1.KeptAddressAnnotation))
		}).Should(Succeed())
	})
})
