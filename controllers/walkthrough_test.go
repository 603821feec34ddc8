package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

const (
	classDefaultsName = "istio-gateway-class-defaults"
	walkthroughNS     = "default"
	gatewayName       = "httpbin-gateway"
	generatedName     = "httpbin-gateway-istio"
)

var (
	defaultClassData = map[string]string{
		"horizontalPodAutoscaler": "spec:\n  minReplicas: 2\n  maxReplicas: 5\n",
		"podDisruptionBudget":     "spec:\n  minAvailable: 1\n",
	}
	caseAData = map[string]string{
		"deployment":              "metadata:\n  labels:\n    test.azureservicemesh.io/deployment-config: \"updated\"\n",
		"horizontalPodAutoscaler": "spec:\n  minReplicas: 3\n  maxReplicas: 6\n",
		"podDisruptionBudget":     "spec:\n  minAvailable: 1\n",
	}
	caseBData = map[string]string{
		"horizontalPodAutoscaler": "spec:\n  minReplicas: 2\n  maxReplicas: 4\n",
		"deployment":              "metadata:\n  labels:\n    test.azureservicemesh.io/deployment-config: \"updated-per-gateway\"\n",
	}
)

func expectHPA(minReplicas, maxReplicas int32) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		h := hpa(g, walkthroughNS, generatedName)
		g.Expect(*h.Spec.MinReplicas).To(Equal(minReplicas))
		g.Expect(h.Spec.MaxReplicas).To(Equal(maxReplicas))
	}).Should(Succeed())
}

func expectDeploymentLabel(value string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(deployment(g, walkthroughNS, generatedName).Labels).To(HaveKeyWithValue("test.azureservicemesh.io/deployment-config", value))
	}).Should(Succeed())
}

var _ = Describe("The walkthrough", Ordered, func() {
	BeforeAll(func() {
		// Registered here, it runs after the last spec, pass or fail: the cases below edit
		// the class defaults, which the other containers expect unchanged.
		DeferCleanup(func() {
			updateConfigMap(systemNamespace, classDefaultsName, defaultClassData)
			expectHPA(2, 5)
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, configMap(walkthroughNS, "gw-options", nil)))).To(Succeed())
		})
	})

	It("accepts the istio GatewayClass the operator creates", func() {
		Eventually(func(g Gomega) {
			gc := &gatewayv1.GatewayClass{}
			g.Expect(k8sClient.Get(ctx, key("", "istio"), gc)).To(Succeed())
			g.Expect(gc.Spec.ControllerName).To(BeEquivalentTo(v1alpha1.ControllerName))
			accepted := metav1.Condition{}
			for _, c := range gc.Status.Conditions {
				if c.Type == string(gatewayv1.GatewayClassConditionStatusAccepted) {
					accepted = c
				}
			}
			g.Expect(accepted).To(haveCondition(metav1.ConditionTrue, "Accepted", gc.Generation))
		}).Should(Succeed())
	})

	It("creates the class defaults ConfigMap with HPA 2 to 5 and PDB minAvailable 1", func() {
		Eventually(func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, key(systemNamespace, classDefaultsName), cm)).To(Succeed())
			g.Expect(cm.Labels).To(HaveKeyWithValue(v1alpha1.DefaultsForClassLabel, "istio"))
			g.Expect(cm.Data).To(Equal(defaultClassData))
		}).Should(Succeed())
	})

	It("generates the Deployment, Service, HPA, PDB and ServiceAccount of the walkthrough Gateway", func() {
		gw := httpGateway(walkthroughNS, gatewayName)
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		route := &gatewayv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Name: "http", Namespace: walkthroughNS},
			Spec: gatewayv1.HTTPRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: gatewayName}}},
				Hostnames:       []gatewayv1.Hostname{"httpbin.example.com"},
			},
		}
		Expect(k8sClient.Create(ctx, route)).To(Succeed())

		Eventually(func(g Gomega) {
			live := gateway(g, walkthroughNS, gatewayName)
			owner := metav1.OwnerReference{
				APIVersion: "gateway.networking.k8s.io/v1", Kind: "Gateway", Name: gatewayName, UID: live.UID,
				Controller: new(true), BlockOwnerDeletion: new(true),
			}
			d := deployment(g, walkthroughNS, generatedName)
			g.Expect(d.OwnerReferences).To(ConsistOf(owner))
			g.Expect(d.Labels).To(HaveKeyWithValue(v1alpha1.GatewayNameLabel, gatewayName))
			g.Expect(d.Labels).To(HaveKeyWithValue(v1alpha1.GatewayClassNameLabel, "istio"))
			g.Expect(d.Labels).To(HaveKeyWithValue(v1alpha1.ManagedLabel, v1alpha1.ManagedLabelValue))
			g.Expect(d.Spec.Replicas).To(HaveValue(BeEquivalentTo(1)), "the API server's default: the operator leaves replicas to the HPA")
			g.Expect(d.Spec.Template.Spec.ServiceAccountName).To(Equal(generatedName))
			g.Expect(d.Spec.Template.Spec.Containers).To(HaveLen(1))
			proxy := d.Spec.Template.Spec.Containers[0]
			g.Expect(proxy.Name).To(Equal("istio-proxy"))
			g.Expect(proxy.Image).To(Equal(proxyImage))
			g.Expect(proxy.Args[:2]).To(Equal([]string{"proxy", "router"}))
			g.Expect(proxy.Env).To(ContainElement(corev1.EnvVar{Name: "CA_ADDR", Value: "istiod.aks-istio-system.svc:15012"}))

			svc := service(g, walkthroughNS, generatedName)
			g.Expect(svc.OwnerReferences).To(ConsistOf(owner))
			g.Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeLoadBalancer))
			g.Expect(svc.Spec.Selector).To(Equal(map[string]string{v1alpha1.GatewayNameLabel: gatewayName}))
			g.Expect(svc.Spec.Ports).To(HaveLen(2))
			g.Expect(svc.Spec.Ports[0]).To(And(HaveField("Port", BeEquivalentTo(15021)), HaveField("TargetPort", intstr.FromInt32(15021)), HaveField("Protocol", corev1.ProtocolTCP)))
			g.Expect(svc.Spec.Ports[1]).To(And(HaveField("Port", BeEquivalentTo(80)), HaveField("AppProtocol", HaveValue(Equal("http")))))

			h := hpa(g, walkthroughNS, generatedName)
			g.Expect(h.OwnerReferences).To(ConsistOf(owner))
			g.Expect(*h.Spec.MinReplicas).To(BeEquivalentTo(2))
			g.Expect(h.Spec.MaxReplicas).To(BeEquivalentTo(5))
			g.Expect(h.Spec.ScaleTargetRef.Name).To(Equal(generatedName))
			g.Expect(h.Spec.Metrics).To(HaveLen(1))
			g.Expect(*h.Spec.Metrics[0].Resource.Target.AverageUtilization).To(BeEquivalentTo(80))

			p := pdb(g, walkthroughNS, generatedName)
			g.Expect(p.OwnerReferences).To(ConsistOf(owner))
			g.Expect(p.Spec.MinAvailable).To(HaveValue(Equal(intstr.FromInt32(1))))
			g.Expect(p.Spec.Selector.MatchLabels).To(Equal(map[string]string{v1alpha1.GatewayNameLabel: gatewayName}))

			sa := &corev1.ServiceAccount{}
			g.Expect(k8sClient.Get(ctx, key(walkthroughNS, generatedName), sa)).To(Succeed())
			g.Expect(sa.OwnerReferences).To(ConsistOf(owner))
		}).Should(Succeed())
	})

	It("reports Accepted, waits for an address, and counts the attached route", func() {
		Eventually(func(g Gomega) {
			gw := gateway(g, walkthroughNS, gatewayName)
			g.Expect(condition(gw, "Accepted")).To(haveCondition(metav1.ConditionTrue, "Accepted", gw.Generation))
			g.Expect(condition(gw, "Programmed")).To(haveCondition(metav1.ConditionFalse, "AddressNotAssigned", gw.Generation))
			g.Expect(condition(gw, status.ConditionCustomizationsApplied)).To(haveCondition(metav1.ConditionTrue, "Applied", gw.Generation))
			g.Expect(gw.Status.Addresses).To(BeEmpty())
			g.Expect(gw.Status.Listeners).To(HaveLen(1))
			g.Expect(gw.Status.Listeners[0].AttachedRoutes).To(BeEquivalentTo(1))
			g.Expect(gw.Status.Listeners[0].SupportedKinds).To(ContainElement(HaveField("Kind", BeEquivalentTo("HTTPRoute"))))
		}).Should(Succeed())
	})

	It("is Programmed with the load balancer's address once the cloud assigns one", func() {
		setLoadBalancerIP(walkthroughNS, generatedName, "20.1.2.3")
		Eventually(func(g Gomega) {
			gw := gateway(g, walkthroughNS, gatewayName)
			g.Expect(condition(gw, "Programmed")).To(haveCondition(metav1.ConditionTrue, "Programmed", gw.Generation))
			g.Expect(gw.Status.Addresses).To(ConsistOf(gatewayv1.GatewayStatusAddress{Type: new(gatewayv1.IPAddressType), Value: "20.1.2.3"}))
			for _, c := range gw.Status.Listeners[0].Conditions {
				g.Expect(c.ObservedGeneration).To(Equal(gw.Generation))
			}
		}).Should(Succeed())
	})

	It("case A: applies an edited class ConfigMap to the HPA and the Deployment", func() {
		updateConfigMap(systemNamespace, classDefaultsName, caseAData)
		expectHPA(3, 6)
		expectDeploymentLabel("updated")
	})

	It("case B: lets the Gateway-level ConfigMap win field by field", func() {
		Expect(k8sClient.Create(ctx, configMap(walkthroughNS, "gw-options", caseBData))).To(Succeed())
		updateGateway(walkthroughNS, gatewayName, func(gw *gatewayv1.Gateway) { gw.Spec.Infrastructure = parametersRef("gw-options") })
		expectHPA(2, 4)
		expectDeploymentLabel("updated-per-gateway")
		Eventually(func(g Gomega) {
			gw := gateway(g, walkthroughNS, gatewayName)
			c := condition(gw, status.ConditionCustomizationsApplied)
			g.Expect(c).To(haveCondition(metav1.ConditionTrue, "Applied", gw.Generation))
			g.Expect(c.Message).To(Equal("Applied ConfigMaps aks-istio-system/istio-gateway-class-defaults, default/gw-options"))
		}).Should(Succeed())
	})

	It("keeps the PDB at minAvailable 1 throughout", func() {
		// The API server counts spec changes in metadata.generation: 1 means cases A and B,
		// which changed the HPA and the Deployment, never touched the PDB's spec.
		p := pdb(Default, walkthroughNS, generatedName)
		Expect(p.Spec.MinAvailable).To(HaveValue(Equal(intstr.FromInt32(1))))
		Expect(p.Generation).To(BeEquivalentTo(1), "the PDB's spec was changed on the way")
	})

	It("falls back to the class level when the Gateway drops its parametersRef", func() {
		updateGateway(walkthroughNS, gatewayName, func(gw *gatewayv1.Gateway) { gw.Spec.Infrastructure = nil })
		expectHPA(3, 6)
		expectDeploymentLabel("updated")
	})

	It("puts spec.infrastructure annotations and labels on the Service and every generated object", func() {
		updateGateway(walkthroughNS, gatewayName, func(gw *gatewayv1.Gateway) {
			gw.Spec.Infrastructure = &gatewayv1.GatewayInfrastructure{
				Annotations: map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{
					"service.beta.kubernetes.io/azure-load-balancer-internal":        "true",
					"service.beta.kubernetes.io/azure-load-balancer-internal-subnet": "my-subnet",
				},
				Labels: map[gatewayv1.LabelKey]gatewayv1.LabelValue{"team": "payments"},
			}
		})
		Eventually(func(g Gomega) {
			svc := service(g, walkthroughNS, generatedName)
			g.Expect(svc.Annotations).To(HaveKeyWithValue("service.beta.kubernetes.io/azure-load-balancer-internal", "true"))
			g.Expect(svc.Annotations).To(HaveKeyWithValue("service.beta.kubernetes.io/azure-load-balancer-internal-subnet", "my-subnet"))
			d := deployment(g, walkthroughNS, generatedName)
			g.Expect(d.Labels).To(HaveKeyWithValue("team", "payments"))
			g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue("team", "payments"))
			g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue("service.beta.kubernetes.io/azure-load-balancer-internal", "true"))
			g.Expect(hpa(g, walkthroughNS, generatedName).Labels).To(HaveKeyWithValue("team", "payments"))
			g.Expect(pdb(g, walkthroughNS, generatedName).Labels).To(HaveKeyWithValue("team", "payments"))
		}).Should(Succeed())
	})
})
