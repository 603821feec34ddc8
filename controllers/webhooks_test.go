package controllers_test

import (
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
)

// warningRecorder keeps the admission warnings the API server relays, as kubectl prints them.
type warningRecorder struct {
	mu       sync.Mutex
	messages []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.messages = append(w.messages, message)
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.messages
	w.messages = nil
	return out
}

// webhookRequests reads controller-runtime's count of requests a webhook path served.
func webhookRequests(path string) float64 {
	return metricSum("controller_runtime_webhook_requests_total", "webhook", path)
}

func expectDenied(err error, parts ...string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred())
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want an admission denial, got %v", err)
	for _, part := range parts {
		Expect(err.Error()).To(ContainSubstring(part))
	}
}

var _ = Describe("The validating webhook", Ordered, func() {
	const ns = "webhook"
	var (
		warnings = &warningRecorder{}
		c        client.Client
	)

	BeforeAll(func() {
		cfg := rest.CopyConfig(restConfig)
		cfg.WarningHandler = warnings
		plain, err := client.New(cfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		c = client.WithFieldOwner(plain, testFieldOwner)
		createNamespace(ns)
		Expect(c.Create(ctx, configMap(ns, "gw-options", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 4\n"}))).To(Succeed())
		gw := httpGateway(ns, "gw")
		gw.Spec.Infrastructure = parametersRef("gw-options")
		Expect(c.Create(ctx, gw)).To(Succeed())
		// The webhook finds referenced ConfigMaps through the operator's cache.
		Eventually(func(g Gomega) { hpa(g, ns, "gw-istio") }).Should(Succeed())
	})

	It("rejects a class defaults ConfigMap with off-list fields, naming every offending path with its data key", func() {
		err := c.Update(ctx, &corev1.ConfigMap{
			ObjectMeta: classDefaultsMeta(),
			Data: map[string]string{
				"deployment":              "spec:\n  template:\n    spec:\n      hostNetwork: true\n      containers:\n      - name: istio-proxy\n        image: evil\n",
				"service":                 "spec:\n  externalIPs: [1.2.3.4]\n",
				"horizontalPodAutoscaler": "spec:\n  minReplicas: 1\n",
			},
		})
		expectDenied(err,
			"ConfigMap aks-istio-system/istio-gateway-class-defaults is not a valid class defaults ConfigMap for GatewayClass istio",
			"data.deployment: spec.template.spec.containers[name=istio-proxy].image is not allowed",
			"data.deployment: spec.template.spec.hostNetwork is not allowed; allowed under spec.template.spec: affinity, containers, nodeName, nodeSelector, tolerations, topologySpreadConstraints",
			"data.service: spec.externalIPs is not allowed",
			"data.horizontalPodAutoscaler: spec.minReplicas 1 is below the minimum of 2",
		)
	})

	It("rejects a second ConfigMap labelled for the class, naming the one in force", func() {
		second := configMap(systemNamespace, "more-defaults", map[string]string{"podDisruptionBudget": "spec:\n  minAvailable: 1\n"})
		second.Labels = map[string]string{v1alpha1.DefaultsForClassLabel: "istio"}
		expectDenied(c.Create(ctx, second), "aks-istio-system/istio-gateway-class-defaults is already in force")
	})

	It("rejects an off-list field in a ConfigMap a Gateway references, and dry runs alike", func() {
		bad := map[string]string{"deployment": "spec:\n  template:\n    spec:\n      volumes: [{name: host, hostPath: {path: /}}]\n"}
		cm := &corev1.ConfigMap{}
		Expect(c.Get(ctx, key(ns, "gw-options"), cm)).To(Succeed())
		cm.Data = bad
		expectDenied(c.Update(ctx, cm, client.DryRunAll), "parameters ConfigMap of Gateway gw", "data.deployment: spec.template.spec.volumes is not allowed")
		expectDenied(c.Update(ctx, cm), "data.deployment: spec.template.spec.volumes is not allowed")
	})

	It("is not even called for an ordinary ConfigMap in another namespace", func() {
		createNamespace("apps")
		before := webhookRequests(controllers.ConfigMapWebhookPath)
		Expect(c.Create(ctx, configMap("apps", "settings", map[string]string{"LOG_LEVEL": "debug", "config.yaml": "a: b\n"}))).To(Succeed())
		// A referenced ConfigMap is judged right after: its request is counted, the
		// ordinary one's never was.
		cm := &corev1.ConfigMap{}
		Expect(c.Get(ctx, key(ns, "gw-options"), cm)).To(Succeed())
		cm.Data = map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 6\n"}
		Expect(c.Update(ctx, cm)).To(Succeed())
		Expect(webhookRequests(controllers.ConfigMapWebhookPath) - before).To(BeNumerically("==", 1))
	})

	It("admits an unreferenced ConfigMap that only looks like a customization", func() {
		lookalike := configMap("apps", "app-settings", map[string]string{"deployment": "spec:\n  template:\n    spec:\n      hostNetwork: true\n", "anything": "goes"})
		Expect(c.Create(ctx, lookalike)).To(Succeed())
		Expect(warnings.take()).To(BeEmpty())
	})

	It("rejects a Gateway that references a ConfigMap it would reject, with the same message", func() {
		Expect(c.Create(ctx, configMap(ns, "bad-options", map[string]string{"service": "spec:\n  selector: {app: db}\n"}))).To(Succeed())
		gw := httpGateway(ns, "gw-bad")
		gw.Spec.Infrastructure = parametersRef("bad-options")
		expectDenied(c.Create(ctx, gw), "ConfigMap webhook/bad-options is not a valid parameters ConfigMap of Gateway gw-bad", "data.service: spec.selector is not allowed")
	})

	It("admits a parametersRef of another kind with a warning, and the Gateway reports it as InvalidParameters", func() {
		gw := httpGateway(ns, "gw-kind")
		gw.Spec.Infrastructure = &gatewayv1.GatewayInfrastructure{ParametersRef: &gatewayv1.LocalParametersReference{Group: "example.com", Kind: "GatewayConfig", Name: "x"}}
		Expect(c.Create(ctx, gw)).To(Succeed())
		Expect(warnings.take()).To(ContainElement(ContainSubstring(`spec.infrastructure.parametersRef example.com/GatewayConfig x is not supported; only group "" kind ConfigMap is: the Gateway reports Accepted=False (InvalidParameters)`)))
		Eventually(func(g Gomega) {
			accepted := condition(gateway(g, ns, "gw-kind"), "Accepted")
			g.Expect(accepted.Reason).To(Equal("InvalidParameters"))
			g.Expect(accepted.Message).To(ContainSubstring("parametersRef example.com/GatewayConfig x is not supported"))
		}).Should(Succeed())
	})

	It("admits a Gateway whose ConfigMap does not exist yet, with a warning", func() {
		gw := httpGateway(ns, "gw-later")
		gw.Spec.Infrastructure = parametersRef("later")
		Expect(c.Create(ctx, gw)).To(Succeed())
		Expect(warnings.take()).To(ContainElement(ContainSubstring("ConfigMap webhook/later does not exist yet")))
	})

	It("warns a Gateway-level spec.replicas that the class level's HPA overrides, naming the class ConfigMap", func() {
		classDefaults := &corev1.ConfigMap{}
		Expect(c.Get(ctx, key(systemNamespace, "istio-gateway-class-defaults"), classDefaults)).To(Succeed())
		Expect(classDefaults.Data).To(HaveKey("horizontalPodAutoscaler"), "the class level this spec relies on asks for an HPA")
		cm := &corev1.ConfigMap{}
		Expect(c.Get(ctx, key(ns, "gw-options"), cm)).To(Succeed())
		warnings.take()
		cm.Data = map[string]string{"deployment": "spec:\n  replicas: 3\n"}
		Expect(c.Update(ctx, cm)).To(Succeed())
		Expect(warnings.take()).To(ConsistOf(
			"data.deployment: spec.replicas is not applied: a HorizontalPodAutoscaler (data.horizontalPodAutoscaler) sets the replicas between its minReplicas and maxReplicas; set minReplicas instead; " +
				"the HorizontalPodAutoscaler comes from ConfigMap aks-istio-system/istio-gateway-class-defaults, the class level of GatewayClass istio"))

		gw := httpGateway(ns, "gw-replicas")
		gw.Spec.Infrastructure = parametersRef("gw-options")
		Expect(c.Create(ctx, gw)).To(Succeed())
		Expect(warnings.take()).To(ContainElement(ContainSubstring("the HorizontalPodAutoscaler comes from ConfigMap aks-istio-system/istio-gateway-class-defaults")))
	})

	It("warns about PDB settings that can block node drains, without rejecting them", func() {
		cm := &corev1.ConfigMap{}
		Expect(c.Get(ctx, key(ns, "gw-options"), cm)).To(Succeed())
		cm.Data = map[string]string{"podDisruptionBudget": "spec:\n  minAvailable: 2\n  unhealthyPodEvictionPolicy: AlwaysAllow\n"}
		Expect(c.Update(ctx, cm)).To(Succeed())
		got := strings.Join(warnings.take(), "\n")
		Expect(got).To(ContainSubstring("spec.minAvailable 2 leaves no allowed disruption at the HPA minimum of 2 replicas"))
		Expect(got).To(ContainSubstring("AlwaysAllow lets drains evict gateway pods that are not ready"))
	})
})
