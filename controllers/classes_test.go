package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

func classCondition(g Gomega, name, conditionType string) *metav1.Condition {
	gc := &gatewayv1.GatewayClass{}
	g.ExpectWithOffset(1, k8sClient.Get(ctx, key("", name), gc)).To(Succeed())
	c := meta.FindStatusCondition(gc.Status.Conditions, conditionType)
	if c != nil {
		g.ExpectWithOffset(1, c.ObservedGeneration).To(Equal(gc.Generation), "GatewayClass %s %s is stale", name, conditionType)
	}
	return c
}

var _ = Describe("Several GatewayClasses", func() {
	const ns = "classes"
	BeforeEach(func() { createNamespace(ns) })

	It("serves every class with the operator's controllerName, each with its own defaults, and leaves other controllers' classes alone", func() {
		internal := &gatewayv1.GatewayClass{
			ObjectMeta: metav1.ObjectMeta{Name: "istio-internal"},
			Spec:       gatewayv1.GatewayClassSpec{ControllerName: v1alpha1.ControllerName, Description: ptr.To("internal load balancers")},
		}
		foreign := &gatewayv1.GatewayClass{
			ObjectMeta: metav1.ObjectMeta{Name: "someone-else"},
			Spec:       gatewayv1.GatewayClassSpec{ControllerName: "example.com/gateway-controller"},
		}
		Expect(k8sClient.Create(ctx, internal)).To(Succeed())
		Expect(k8sClient.Create(ctx, foreign)).To(Succeed())
		DeferCleanup(func() {
			Expect(k8sClient.Delete(ctx, internal)).To(Succeed())
			Expect(k8sClient.Delete(ctx, foreign)).To(Succeed())
		})

		By("accepting the second class and creating its defaults ConfigMap, labelled with its name")
		Eventually(func(g Gomega) {
			c := classCondition(g, "istio-internal", "Accepted")
			g.Expect(c).NotTo(BeNil())
			g.Expect(*c).To(haveCondition(metav1.ConditionTrue, "Accepted", 1))
			version := classCondition(g, "istio-internal", "SupportedVersion")
			g.Expect(version).NotTo(BeNil())
			g.Expect(*version).To(haveCondition(metav1.ConditionTrue, "SupportedVersion", 1))
			g.Expect(version.Message).To(Equal("Gateway API CRDs are of the supported release v1.6.x"))
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, key(systemNamespace, "istio-internal-gateway-class-defaults"), cm)).To(Succeed())
			g.Expect(cm.Labels).To(HaveKeyWithValue(v1alpha1.DefaultsForClassLabel, "istio-internal"))
		}).Should(Succeed())

		By("following a generation bump")
		Eventually(func(g Gomega) {
			gc := &gatewayv1.GatewayClass{}
			g.Expect(k8sClient.Get(ctx, key("", "istio-internal"), gc)).To(Succeed())
			gc.Spec.Description = ptr.To("internal load balancers, v2")
			g.Expect(k8sClient.Update(ctx, gc)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(*classCondition(g, "istio-internal", "Accepted")).To(haveCondition(metav1.ConditionTrue, "Accepted", 2))
		}).Should(Succeed())

		By("provisioning a Gateway of the second class from that class's defaults only")
		updateConfigMap(systemNamespace, "istio-internal-gateway-class-defaults", map[string]string{
			"horizontalPodAutoscaler": "spec:\n  minReplicas: 3\n  maxReplicas: 7\n",
		})
		internalGW := httpGateway(ns, "internal")
		internalGW.Spec.GatewayClassName = "istio-internal"
		defaultGW := httpGateway(ns, "default")
		Expect(k8sClient.Create(ctx, internalGW)).To(Succeed())
		Expect(k8sClient.Create(ctx, defaultGW)).To(Succeed())
		DeferCleanup(func() {
			Expect(k8sClient.Delete(ctx, internalGW)).To(Succeed())
			Expect(k8sClient.Delete(ctx, defaultGW)).To(Succeed())
		})
		Eventually(func(g Gomega) {
			internalHPA := hpa(g, ns, "internal-istio")
			g.Expect(internalHPA.Spec.MaxReplicas).To(BeEquivalentTo(7))
			g.Expect(*internalHPA.Spec.MinReplicas).To(BeEquivalentTo(3))
			g.Expect(internalHPA.Labels).To(HaveKeyWithValue("gateway.networking.k8s.io/gateway-class-name", "istio-internal"))
			g.Expect(hpa(g, ns, "default-istio").Spec.MaxReplicas).To(BeEquivalentTo(5))
			customized := condition(gateway(g, ns, "internal"), "gateway.istio.io/CustomizationsApplied")
			g.Expect(customized.Message).To(Equal("Applied ConfigMaps aks-istio-system/istio-internal-gateway-class-defaults"))
		}).Should(Succeed())

		By("writing nothing on a class of another controller, nor on its Gateways")
		foreignGW := httpGateway(ns, "foreign")
		foreignGW.Spec.GatewayClassName = "someone-else"
		Expect(k8sClient.Create(ctx, foreignGW)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, foreignGW)).To(Succeed()) })
		// The Gateway created after it is reconciled first: once that shows, the foreign one has had its turn.
		probe := httpGateway(ns, "probe")
		Expect(k8sClient.Create(ctx, probe)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, probe)).To(Succeed()) })
		Eventually(func(g Gomega) {
			g.Expect(condition(gateway(g, ns, "probe"), "Accepted").Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		// Both keep the status the API server defaults them to (Unknown, Pending).
		untouched := HaveEach(And(HaveField("Status", metav1.ConditionUnknown), HaveField("Reason", "Pending")))
		Consistently(func(g Gomega) {
			gc := &gatewayv1.GatewayClass{}
			g.Expect(k8sClient.Get(ctx, key("", "someone-else"), gc)).To(Succeed())
			g.Expect(gc.Status.Conditions).To(untouched)
			g.Expect(gateway(g, ns, "foreign").Status.Conditions).To(untouched)
			g.Expect(k8sClient.Get(ctx, key(ns, "foreign-istio"), &corev1.Service{})).NotTo(Succeed())
		}).Should(Succeed())
	})
})
