package controllers_test

import (
	"maps"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

// platformPolicy is after the README's scenario, shared with pkg/customize's tests: tenants tune
// HPA bounds and the proxy's resources, never the node pool or the internal load balancer,
// and at most 10 replicas (20 for the trusted tier).
var platformPolicy = func() string {
	text, err := os.ReadFile("../pkg/customize/testdata/tenant-policy.yaml")
	if err != nil {
		panic(err)
	}
	return string(text)
}()

// withPlatformPolicy puts the policy, a node pool and the internal load balancer into the
// class defaults for the container, and restores the defaults after its last spec.
func withPlatformPolicy() {
	BeforeAll(func() {
		data := maps.Clone(defaultClassData)
		data["policy"] = platformPolicy
		data["deployment"] = "spec:\n  template:\n    spec:\n      nodeSelector: {agentpool: gateways}\n"
		data["service"] = "metadata:\n  annotations:\n    service.beta.kubernetes.io/azure-load-balancer-internal: \"true\"\n"
		updateConfigMap(systemNamespace, classDefaultsName, data)
		DeferCleanup(updateConfigMap, systemNamespace, classDefaultsName, defaultClassData)
	})
}

// tenantOverride is what a tenant tries: a public load balancer, another node pool with
// its taint tolerated, 50 replicas and 4 CPUs; only its team label is within the policy.
var tenantOverride = map[string]string{
	"service":                 "metadata:\n  annotations:\n    service.beta.kubernetes.io/azure-load-balancer-internal: \"false\"\n",
	"deployment":              "metadata:\n  labels: {team: a}\nspec:\n  template:\n    spec:\n      nodeSelector: {agentpool: spot}\n      tolerations: [{key: spot, operator: Exists}]\n      containers:\n      - name: istio-proxy\n        resources: {limits: {cpu: \"4\"}}\n",
	"horizontalPodAutoscaler": "spec:\n  maxReplicas: 50\n",
}

var _ = Describe("The class policy, in the reconciler", Ordered, func() {
	const tenant, trusted = "policy-tenant", "policy-trusted"
	webhooksOff()
	withPlatformPolicy()

	BeforeAll(func() {
		createNamespace(tenant)
		ns := &corev1.Namespace{}
		createNamespace(trusted)
		Expect(k8sClient.Get(ctx, key("", trusted), ns)).To(Succeed())
		ns.Labels = map[string]string{"gateway-tier": "trusted"}
		Expect(k8sClient.Update(ctx, ns)).To(Succeed())
	})

	It("keeps the platform's enforced values, lowers what exceeds a bound, and tells the Gateway which rule did", func() {
		Expect(k8sClient.Create(ctx, configMap(tenant, "options", tenantOverride))).To(Succeed())
		gw := httpGateway(tenant, "gw")
		gw.Spec.Infrastructure = parametersRef("options")
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		Eventually(func(g Gomega) {
			d := deployment(g, tenant, "gw-istio")
			g.Expect(d.Spec.Template.Spec.NodeSelector).To(Equal(map[string]string{"agentpool": "gateways"}), "the class's node pool, enforced")
			g.Expect(d.Spec.Template.Spec.Tolerations).To(BeEmpty(), "tolerations are not among the paths Gateways may set")
			g.Expect(d.Labels).To(HaveKeyWithValue("team", "a"), "what the policy allows is applied")
			g.Expect(d.Spec.Template.Spec.Containers[0].Resources.Limits.Cpu().Equal(resource.MustParse("2"))).To(BeTrue(), "4 CPUs lowered to the bound of 2")
			g.Expect(service(g, tenant, "gw-istio").Annotations).To(HaveKeyWithValue("service.beta.kubernetes.io/azure-load-balancer-internal", "true"))
			g.Expect(hpa(g, tenant, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(10))

			live := gateway(g, tenant, "gw")
			c := condition(live, status.ConditionCustomizationsApplied)
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, status.ReasonPolicyEnforced, live.Generation))
			for _, part := range []string{
				"data.deployment: spec.template.spec.nodeSelector is set only by the class level (GatewayClass istio policy, rule enforced)",
				"data.deployment: spec.template.spec.tolerations may not be set by a Gateway (GatewayClass istio policy, rule gatewayMayOverride: allowed metadata.labels, spec.template.spec.containers.resources, spec.template.spec.nodeSelector)",
				"data.service: metadata.annotations.service.beta.kubernetes.io/azure-load-balancer-internal is set only by the class level (GatewayClass istio policy, rule enforced)",
				"data.horizontalPodAutoscaler: spec.maxReplicas 50 is above the maximum of 10 (GatewayClass istio policy, rule maximums); 10 applied",
				"data.deployment: spec.template.spec.containers[name=istio-proxy].resources.limits.cpu 4 is above the maximum of 2 (GatewayClass istio policy, rule maximums); 2 applied",
			} {
				g.Expect(c.Message).To(ContainSubstring(part))
			}
		}).Should(Succeed())
		Eventually(func(g Gomega) []string { return eventNotes(g, tenant, "gw") }).Should(ContainElement(SatisfyAll(
			HavePrefix("The class policy dropped or lowered: "),
			ContainSubstring("spec.template.spec.nodeSelector is set only by the class level (GatewayClass istio policy, rule enforced) (enforced)"),
		)))
	})

	It("gives the trusted tier its own bound", func() {
		Expect(k8sClient.Create(ctx, configMap(trusted, "options", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 50\n"}))).To(Succeed())
		gw := httpGateway(trusted, "gw")
		gw.Spec.Infrastructure = parametersRef("options")
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(hpa(g, trusted, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(20))
			g.Expect(condition(gateway(g, trusted, "gw"), status.ConditionCustomizationsApplied).Message).To(
				ContainSubstring("spec.maxReplicas 50 is above the maximum of 20 (GatewayClass istio policy, tier trusted, rule maximums)"))
		}).Should(Succeed())

		By("leaving the tier when the namespace loses its label")
		ns := &corev1.Namespace{}
		Expect(k8sClient.Get(ctx, key("", trusted), ns)).To(Succeed())
		ns.Labels = nil
		Expect(k8sClient.Update(ctx, ns)).To(Succeed())
		Eventually(func(g Gomega) { g.Expect(hpa(g, trusted, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(10)) }).Should(Succeed())
	})

	It("leaves off a spec.infrastructure annotation the policy reserves for the class level", func() {
		updateGateway(tenant, "gw", func(gw *gatewayv1.Gateway) {
			gw.Spec.Infrastructure.Annotations = map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{
				"service.beta.kubernetes.io/azure-load-balancer-internal": "false", "owner": "team-a"}
		})
		Eventually(func(g Gomega) {
			svc := service(g, tenant, "gw-istio")
			g.Expect(svc.Annotations).To(HaveKeyWithValue("owner", "team-a"))
			g.Expect(svc.Annotations).To(HaveKeyWithValue("service.beta.kubernetes.io/azure-load-balancer-internal", "true"))
			g.Expect(condition(gateway(g, tenant, "gw"), status.ConditionCustomizationsApplied).Message).To(
				ContainSubstring("spec.infrastructure.annotations[service.beta.kubernetes.io/azure-load-balancer-internal] is set only by the class level (GatewayClass istio policy, rule enforced)"))
		}).Should(Succeed())
	})

	It("re-evaluates the class's Gateways when the policy changes, with one write per changed object", func() {
		operatorRequests.Reset()
		data := maps.Clone(defaultClassData)
		data["policy"] = strings.Replace(platformPolicy, "spec.maxReplicas: 10}", "spec.maxReplicas: 12}", 1)
		data["deployment"] = "spec:\n  template:\n    spec:\n      nodeSelector: {agentpool: gateways}\n"
		data["service"] = "metadata:\n  annotations:\n    service.beta.kubernetes.io/azure-load-balancer-internal: \"true\"\n"
		updateConfigMap(systemNamespace, classDefaultsName, data)
		holdsAfter(func(g Gomega) {
			g.Expect(hpa(g, tenant, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(12))
			g.Expect(hpa(g, trusted, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(12))
		}, func(g Gomega) {
			writes := operatorRequests.WritesIn(tenant)
			g.Expect(writes).To(HaveKeyWithValue("PATCH horizontalpodautoscalers", 1))
			g.Expect(writes).NotTo(HaveKey("PATCH deployments"))
			g.Expect(writes).NotTo(HaveKey("PATCH services"))
		})
	})
})

var _ = Describe("The class policy, at admission", Ordered, func() {
	const ns = "policy-admission"
	var c client.Client
	withPlatformPolicy()

	BeforeAll(func() {
		plain, err := client.New(rest.CopyConfig(restConfig), client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		c = client.WithFieldOwner(plain, testFieldOwner)
		createNamespace(ns)
		Expect(c.Create(ctx, configMap(ns, "options", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 4\n"}))).To(Succeed())
		gw := httpGateway(ns, "gw")
		gw.Spec.Infrastructure = parametersRef("options")
		Expect(c.Create(ctx, gw)).To(Succeed())
		Eventually(func(g Gomega) { hpa(g, ns, "gw-istio") }).Should(Succeed())
	})

	It("refuses a tenant's ConfigMap that the policy forbids, naming every path and its rule", func() {
		cm := &corev1.ConfigMap{}
		Expect(c.Get(ctx, key(ns, "options"), cm)).To(Succeed())
		cm.Data = tenantOverride
		expectDenied(c.Update(ctx, cm),
			"ConfigMap policy-admission/options is not a valid parameters ConfigMap of Gateway gw",
			"data.deployment: spec.template.spec.nodeSelector is set only by the class level (GatewayClass istio policy, rule enforced)",
			"data.deployment: spec.template.spec.tolerations may not be set by a Gateway (GatewayClass istio policy, rule gatewayMayOverride",
			"data.service: metadata.annotations.service.beta.kubernetes.io/azure-load-balancer-internal is set only by the class level (GatewayClass istio policy, rule enforced)",
			"data.horizontalPodAutoscaler: spec.maxReplicas 50 is above the maximum of 10 (GatewayClass istio policy, rule maximums)",
			"data.deployment: spec.template.spec.containers[name=istio-proxy].resources.limits.cpu 4 is above the maximum of 2",
		)
	})

	It("refuses a Gateway whose spec.infrastructure sets an enforced annotation", func() {
		gw := httpGateway(ns, "gw-public")
		gw.Spec.Infrastructure = &gatewayv1.GatewayInfrastructure{Annotations: map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{
			"service.beta.kubernetes.io/azure-load-balancer-internal": "false"}}
		expectDenied(c.Create(ctx, gw), "Gateway policy-admission/gw-public is not a valid Gateway of GatewayClass istio",
			"spec.infrastructure.annotations[service.beta.kubernetes.io/azure-load-balancer-internal] is set only by the class level (GatewayClass istio policy, rule enforced)")
	})

	It("refuses a policy that is malformed or names a path off the allowlist", func() {
		cm := &corev1.ConfigMap{}
		Expect(c.Get(ctx, key(systemNamespace, classDefaultsName), cm)).To(Succeed())
		cm.Data = maps.Clone(cm.Data)
		cm.Data["policy"] = "enforced:\n  deployment: [spec.template.spec.hostNetwork]\nmaximums:\n  horizontalPodAutoscaler: {spec.maxReplicas: -1}\n"
		expectDenied(c.Update(ctx, cm),
			"data.policy: enforced.deployment: spec.template.spec.hostNetwork is not on the allowlist",
			"data.policy: maximums.horizontalPodAutoscaler: spec.maxReplicas bound -1 is negative")
	})

	It("refuses a policy written at the Gateway level", func() {
		cm := &corev1.ConfigMap{}
		Expect(c.Get(ctx, key(ns, "options"), cm)).To(Succeed())
		cm.Data = map[string]string{"policy": "enforced: {}\n"}
		expectDenied(c.Update(ctx, cm), "data.policy is read only from the class level")
	})
})
