package controllers_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
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
		Eventually(func(g Gomega) []string { return eventNotes(g, ns, "gw") }).Should(ContainElement(ContainSubstring("was changed back 3 times")), "one Warning Event tells it")

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

var _ = Describe("A write war over the status", func() {
	const ns, rival = "status-contention", "pilot-discovery"

	// istiodWritesAccepted plays istiod with its Gateway API status on: an update of the
	// status with its own Accepted message, as istiod writes it.
	istiodWritesAccepted := func(setConditions func() (client.Object, *[]metav1.Condition)) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			obj, conditions := setConditions()
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
			meta.SetStatusCondition(conditions, metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted",
				Message: "Handled by Istio controller", ObservedGeneration: obj.GetGeneration()})
			g.Expect(k8sClient.Status().Update(ctx, obj, client.FieldOwner(rival))).To(Succeed())
		}).Should(Succeed())
	}

	It("on a Gateway: answered a few times, then the operator writes only its own conditions, saying why, until the Gateway changes", func() {
		createNamespace(ns)
		convergedGateway(ns, "gw")
		DeferCleanup(func() {
			Expect(k8sClient.Delete(ctx, &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"}})).To(Succeed())
		})
		stopsBefore := metricSum("istio_gateway_operator_contention_stops_total", "kind", "GatewayStatus")
		gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"}}
		onGateway := func() (client.Object, *[]metav1.Condition) { return gw, &gw.Status.Conditions }
		accepted := func(g Gomega) string { return condition(gateway(g, ns, "gw"), "Accepted").Message }
		ours := accepted(Default)
		// A status-only change reconciles nothing; whatever else happens next (here a
		// label, which leaves the generation alone) has the operator write its status again.
		nudges := 0
		rivalWrites := func() {
			GinkgoHelper()
			istiodWritesAccepted(onGateway)
			nudges++
			updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) {
				gw.Labels = map[string]string{"nudge": fmt.Sprint(nudges)}
			})
		}

		By("answering the first changes, as drift")
		for range 2 {
			rivalWrites()
			Eventually(accepted).Should(Equal(ours))
		}

		By("stopping at the third within the window")
		rivalWrites()
		Eventually(func(g Gomega) {
			c := condition(gateway(g, ns, "gw"), "gateway.istio.io/ResourcesApplied")
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "Contended", 1))
			g.Expect(c.Message).To(ContainSubstring(`status was changed back 3 times within 10m0s, last by field manager "pilot-discovery"`))
			g.Expect(c.Message).To(ContainSubstring("PILOT_ENABLE_GATEWAY_API_STATUS=false"))
		}).Should(Succeed())
		Expect(metricSum("istio_gateway_operator_contention_stops_total", "kind", "GatewayStatus") - stopsBefore).To(BeEquivalentTo(1))
		Consistently(accepted).Should(Equal("Handled by Istio controller"), "the operator no longer fights over it")
		Eventually(func(g Gomega) []string { return eventNotes(g, ns, "gw") }).Should(ContainElement(ContainSubstring("status was changed back 3 times")), "one Warning Event tells it")

		By("resuming when the Gateway changes")
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) {
			gw.Spec.Listeners = append(gw.Spec.Listeners, gatewayv1.Listener{Name: "http-alt", Port: 8080, Protocol: gatewayv1.HTTPProtocolType})
		})
		Eventually(func(g Gomega) {
			g.Expect(condition(gateway(g, ns, "gw"), "Accepted")).To(haveCondition(metav1.ConditionTrue, "Accepted", 2))
			g.Expect(accepted(g)).NotTo(Equal("Handled by Istio controller"))
			g.Expect(condition(gateway(g, ns, "gw"), "gateway.istio.io/ResourcesApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", 2))
		}).Should(Succeed())
	})

	It("on a GatewayClass: answered a few times, then left to the other writer, with one Event", func() {
		class := &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "contended"},
			Spec: gatewayv1.GatewayClassSpec{ControllerName: "istio.io/gateway-controller"}}
		Expect(k8sClient.Create(ctx, class)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, class)).To(Succeed()) })
		stopsBefore := metricSum("istio_gateway_operator_contention_stops_total", "kind", "GatewayClassStatus")
		onClass := func() (client.Object, *[]metav1.Condition) { return class, &class.Status.Conditions }
		accepted := func(g Gomega) string {
			fresh := &gatewayv1.GatewayClass{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(class), fresh)).To(Succeed())
			c := meta.FindStatusCondition(fresh.Status.Conditions, "Accepted")
			g.Expect(c).NotTo(BeNil())
			return c.Message
		}
		Eventually(accepted).Should(Equal("Handled by istio-gateway-operator"))

		for range 2 {
			istiodWritesAccepted(onClass)
			Eventually(accepted).Should(Equal("Handled by istio-gateway-operator"))
		}
		istiodWritesAccepted(onClass)
		Eventually(func(g Gomega) []string {
			var notes []string
			for _, e := range eventsFor(g, "", "contended") {
				notes = append(notes, e.Reason+": "+e.Note)
			}
			return notes
		}).Should(ContainElement(ContainSubstring(`Contended: This GatewayClass's status was changed back 3 times within 10m0s, last by field manager "pilot-discovery"`)))
		Expect(metricSum("istio_gateway_operator_contention_stops_total", "kind", "GatewayClassStatus") - stopsBefore).To(BeEquivalentTo(1))
		Consistently(accepted).Should(Equal("Handled by Istio controller"), "the operator no longer fights over it")
	})
})
