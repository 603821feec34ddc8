package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var _ = Describe("A write war over a generated object", func() {
	const ns, rival = "contention", "istio.io/gateway-controller"

	// takeImage plays istiod's deployment controller: a forced apply of its own image.
	takeImage := func(image string) {
		GinkgoHelper()
		ac := appsv1ac.Deployment("gw-istio", ns).WithSpec(appsv1ac.DeploymentSpec().
			WithTemplate(corev1ac.PodTemplateSpec().WithSpec(corev1ac.PodSpec().
				WithContainers(corev1ac.Container().WithName("istio-proxy").WithImage(image)))))
		Expect(k8sClient.Apply(ctx, ac, client.FieldOwner(rival), client.ForceOwnership)).To(Succeed())
	}
	image := func(g Gomega) string { return deployment(g, ns, "gw-istio").Spec.Template.Spec.Containers[0].Image }

	It("is repaired a few times, then stopped and reported with the other writer's name, until the Gateway changes", func() {
		createNamespace(ns)
		convergedGateway(ns, "gw")
		DeferCleanup(func() {
			Expect(k8sClient.Delete(ctx, &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"}})).To(Succeed())
		})
		stopsBefore := metricSum("istio_gateway_operator_contention_stops_total", "kind", "Deployment")

		By("repairing the first changes, as drift")
		for range 2 {
			takeImage("docker.io/istio/proxyv2:rival")
			Eventually(image).Should(Equal(proxyImage))
		}

		By("stopping at the third within the window")
		takeImage("docker.io/istio/proxyv2:rival")
		Eventually(func(g Gomega) {
			c := condition(gateway(g, ns, "gw"), "gateway.istio.io/ResourcesApplied")
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "Contended", 1))
			g.Expect(c.Message).To(ContainSubstring(`Deployment contention/gw-istio was changed back 3 times within 10m0s, last by field manager "istio.io/gateway-controller"`))
			g.Expect(condition(gateway(g, ns, "gw"), "Programmed").Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())
		Expect(metricSum("istio_gateway_operator_contention_stops_total", "kind", "Deployment") - stopsBefore).To(BeEquivalentTo(1))
		Consistently(image).Should(Equal("docker.io/istio/proxyv2:rival"), "the operator no longer fights over it")
		Eventually(func(g Gomega) []string {
			var notes []string
			for _, e := range eventsFor(g, ns, "gw") {
				notes = append(notes, e.Note)
			}
			return notes
		}).Should(ContainElement(ContainSubstring("was changed back 3 times")), "one Warning Event tells it")

		By("resuming when the Gateway changes")
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) {
			gw.Spec.Listeners = append(gw.Spec.Listeners, gatewayv1.Listener{Name: "http-alt", Port: 8080, Protocol: gatewayv1.HTTPProtocolType})
		})
		Eventually(func(g Gomega) {
			g.Expect(image(g)).To(Equal(proxyImage))
			g.Expect(condition(gateway(g, ns, "gw"), "gateway.istio.io/ResourcesApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", 2))
		}).Should(Succeed())
	})
})
