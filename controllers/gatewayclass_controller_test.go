package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

func gatewayClassCondition(g Gomega, conditionType string) metav1.Condition {
	gc := &gatewayv1.GatewayClass{}
	g.ExpectWithOffset(1, k8sClient.Get(ctx, key("", "istio"), gc)).To(Succeed())
	c := meta.FindStatusCondition(gc.Status.Conditions, conditionType)
	g.ExpectWithOffset(1, c).NotTo(BeNil())
	g.ExpectWithOffset(1, c.ObservedGeneration).To(Equal(gc.Generation))
	return *c
}

// updateServedClass changes the served GatewayClass, retrying on conflicts with the
// operator's own writes.
func updateServedClass(mutate func(*gatewayv1.GatewayClass)) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		gc := &gatewayv1.GatewayClass{}
		g.Expect(k8sClient.Get(ctx, key("", "istio"), gc)).To(Succeed())
		mutate(gc)
		g.Expect(k8sClient.Update(ctx, gc)).To(Succeed())
	}).Should(Succeed())
}

var _ = Describe("The GatewayClass", Ordered, func() {
	webhooksOff()

	It("never overwrites the user's edits to the class defaults ConfigMap", func() {
		edited := map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 9\n"}
		updateConfigMap(systemNamespace, classDefaultsName, edited)
		DeferCleanup(updateConfigMap, systemNamespace, classDefaultsName, defaultClassData)
		// A change of the class's spec makes the class reconciler run again, which its
		// conditions' observedGeneration shows; only then is "never" watched.
		updateServedClass(func(gc *gatewayv1.GatewayClass) { gc.Spec.Description = new("edited defaults test") })
		DeferCleanup(updateServedClass, func(gc *gatewayv1.GatewayClass) { gc.Spec.Description = nil })
		holdsAfter(func(g Gomega) {
			gc := &gatewayv1.GatewayClass{}
			g.Expect(k8sClient.Get(ctx, key("", "istio"), gc)).To(Succeed())
			g.Expect(gc.Status.Conditions).To(HaveLen(3))
			g.Expect(gc.Status.Conditions).To(HaveEach(HaveField("ObservedGeneration", gc.Generation)))
		}, func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, key(systemNamespace, classDefaultsName), cm)).To(Succeed())
			g.Expect(cm.Data).To(Equal(edited))
		})
	})

	It("uses the oldest of several labelled ConfigMaps and says so, with an Event", func() {
		second := configMap(systemNamespace, "second-defaults", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 9\n"})
		second.Labels = map[string]string{v1alpha1.DefaultsForClassLabel: "istio"}
		Expect(k8sClient.Create(ctx, second)).To(Succeed())
		Eventually(func(g Gomega) {
			c := gatewayClassCondition(g, status.ConditionClassDefaultsResolved)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(status.ReasonMultipleDefaults))
			g.Expect(c.Message).To(Equal("Using ConfigMap aks-istio-system/istio-gateway-class-defaults, the oldest labelled " +
				"gateway.istio.io/defaults-for-class=istio; ignoring aks-istio-system/second-defaults"))
			g.Expect(gatewayClassCondition(g, "Accepted").Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			var notes []string
			for _, e := range eventsFor(g, "default", "istio") {
				notes = append(notes, e.Reason)
			}
			g.Expect(notes).To(ContainElement(status.ReasonMultipleDefaults))
		}).Should(Succeed())

		Expect(k8sClient.Delete(ctx, second)).To(Succeed())
		Eventually(func(g Gomega) {
			c := gatewayClassCondition(g, status.ConditionClassDefaultsResolved)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Message).To(Equal("Using ConfigMap aks-istio-system/istio-gateway-class-defaults"))
		}).Should(Succeed())
	})

	It("takes the class-level ConfigMap from spec.parametersRef when set", func() {
		createNamespace("class-params")
		Expect(k8sClient.Create(ctx, configMap("class-params", "explicit", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 11\n"}))).To(Succeed())
		convergedGateway("class-params", "gw")
		setParametersRef := func(ref *gatewayv1.ParametersReference) {
			updateServedClass(func(gc *gatewayv1.GatewayClass) { gc.Spec.ParametersRef = ref })
		}
		setParametersRef(&gatewayv1.ParametersReference{Group: "", Kind: "ConfigMap", Name: "explicit", Namespace: new(gatewayv1.Namespace("class-params"))})
		Eventually(func(g Gomega) {
			g.Expect(hpa(g, "class-params", "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(11))
		}).Should(Succeed())

		By("reporting a parametersRef of another kind on the class and its Gateways")
		setParametersRef(&gatewayv1.ParametersReference{Group: "example.com", Kind: "Config", Name: "x"})
		Eventually(func(g Gomega) {
			c := gatewayClassCondition(g, "Accepted")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal("InvalidParameters"))
			gw := gateway(g, "class-params", "gw")
			g.Expect(condition(gw, "Accepted")).To(haveCondition(metav1.ConditionFalse, "InvalidParameters", gw.Generation))
		}).Should(Succeed())

		setParametersRef(nil)
		Eventually(func(g Gomega) {
			g.Expect(gatewayClassCondition(g, "Accepted").Status).To(Equal(metav1.ConditionTrue))
			g.Expect(hpa(g, "class-params", "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(5))
		}).Should(Succeed())
	})

	It("keeps a deleted class defaults ConfigMap deleted through a restart, until the class's annotation asks for it again", func() {
		servedClass := func(g Gomega) *gatewayv1.GatewayClass {
			gc := &gatewayv1.GatewayClass{}
			g.Expect(k8sClient.Get(ctx, key("", "istio"), gc)).To(Succeed())
			return gc
		}
		classDefaults := func() error {
			return k8sClient.Get(ctx, key(systemNamespace, classDefaultsName), &corev1.ConfigMap{})
		}
		askAgain := func() {
			updateServedClass(func(gc *gatewayv1.GatewayClass) { delete(gc.Annotations, v1alpha1.ClassDefaultsEnsuredAnnotation) })
			Eventually(func(g Gomega) {
				cm := &corev1.ConfigMap{}
				g.Expect(k8sClient.Get(ctx, key(systemNamespace, classDefaultsName), cm)).To(Succeed())
				g.Expect(cm.Data).To(Equal(defaultClassData))
			}).Should(Succeed())
		}
		Eventually(func(g Gomega) {
			g.Expect(servedClass(g).Annotations).To(HaveKeyWithValue(v1alpha1.ClassDefaultsEnsuredAnnotation, systemNamespace+"/"+classDefaultsName))
		}).Should(Succeed())
		// The other specs need the class defaults, whatever happens here.
		DeferCleanup(askAgain)
		cm := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, key(systemNamespace, classDefaultsName), cm)).To(Succeed())
		Expect(k8sClient.Delete(ctx, cm)).To(Succeed())

		stopManager()
		Eventually(managerDone).Should(BeClosed())
		reconcilesBefore := reconcileCount("gatewayclass")
		startManager()
		// Once the restarted operator has reconciled the class, the ConfigMap is still gone.
		Eventually(func() float64 { return reconcileCount("gatewayclass") - reconcilesBefore }).Should(BeNumerically(">=", 1))
		Consistently(classDefaults, "3s").Should(Satisfy(apierrors.IsNotFound))

		By("creating it again once the annotation is removed")
		askAgain()
	})

	It("re-creates the served GatewayClass if it is deleted", func() {
		gc := &gatewayv1.GatewayClass{}
		Expect(k8sClient.Get(ctx, key("", "istio"), gc)).To(Succeed())
		Expect(k8sClient.Delete(ctx, gc)).To(Succeed())
		Eventually(func(g Gomega) {
			fresh := &gatewayv1.GatewayClass{}
			g.Expect(k8sClient.Get(ctx, key("", "istio"), fresh)).To(Succeed())
			g.Expect(fresh.UID).NotTo(Equal(gc.UID))
			g.Expect(gatewayClassCondition(g, "Accepted").Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
	})
})
