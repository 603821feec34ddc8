package controllers_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

// resourceVersions records the generated objects' versions, to prove nothing was written.
func resourceVersions(g Gomega, namespace, name string) map[string]string {
	out := map[string]string{}
	for kind, obj := range map[string]client.Object{
		"Deployment": &appsv1.Deployment{}, "Service": &corev1.Service{}, "ServiceAccount": &corev1.ServiceAccount{},
		"HorizontalPodAutoscaler": &autoscalingv2.HorizontalPodAutoscaler{}, "PodDisruptionBudget": &policyv1.PodDisruptionBudget{},
	} {
		g.ExpectWithOffset(1, k8sClient.Get(ctx, key(namespace, name), obj)).To(Succeed())
		out[kind] = obj.GetResourceVersion()
	}
	return out
}

// convergedGateway creates a Gateway and waits for its five resources and its Accepted status.
func convergedGateway(namespace, name string) {
	GinkgoHelper()
	createNamespace(namespace)
	Expect(k8sClient.Create(ctx, httpGateway(namespace, name))).To(Succeed())
	Eventually(func(g Gomega) {
		resourceVersions(g, namespace, name+"-istio")
		// Converged includes the status: a spec that reads it next must read the operator's.
		gw := gateway(g, namespace, name)
		g.Expect(condition(gw, "Accepted")).To(haveCondition(metav1.ConditionTrue, "Accepted", gw.Generation))
	}).Should(Succeed())
}

var _ = Describe("Invalid parameters", Ordered, func() {
	const ns = "invalid-params"
	var before map[string]string
	webhooksOff()

	BeforeAll(func() {
		convergedGateway(ns, "gw")
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "Accepted").Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		Eventually(func(g Gomega) { before = resourceVersions(g, ns, "gw-istio") }).Should(Succeed())
	})

	expectInvalid := func(messageParts ...string) {
		GinkgoHelper()
		since := time.Now()
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			accepted := condition(gw, "Accepted")
			g.Expect(accepted).To(haveCondition(metav1.ConditionFalse, "InvalidParameters", gw.Generation))
			for _, part := range messageParts {
				g.Expect(accepted.Message).To(ContainSubstring(part))
			}
			g.Expect(condition(gw, "Programmed")).To(haveCondition(metav1.ConditionFalse, "Invalid", gw.Generation))
		}).Should(Succeed())
		By("telling `kubectl describe gateway` too: a new Warning Event with the same words")
		Eventually(func(g Gomega) {
			g.Expect(eventsSince(eventsFor(g, ns, "gw"), since)).To(ContainElement(SatisfyAll(
				HaveField("Type", corev1.EventTypeWarning),
				HaveField("Reason", "InvalidParameters"),
				HaveField("Note", SatisfyAll(containsAll(messageParts)...)),
			)))
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(resourceVersions(g, ns, "gw-istio")).To(Equal(before), "the generated resources must be left exactly as they were")
		}).Should(Succeed())
	}

	It("reports a parametersRef to a missing ConfigMap and leaves the resources untouched", func() {
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) { gw.Spec.Infrastructure = parametersRef("not-yet") })
		expectInvalid("ConfigMap invalid-params/not-yet does not exist")
		Eventually(func(g Gomega) {
			var reasons []string
			for _, e := range eventsFor(g, ns, "gw") {
				reasons = append(reasons, e.Reason+": "+e.Note)
			}
			g.Expect(reasons).To(ContainElement(ContainSubstring("InvalidParameters: Gateway parametersRef: ConfigMap invalid-params/not-yet does not exist")))
		}).Should(Succeed())
	})

	It("converges as soon as the ConfigMap appears, with no other change", func() {
		Expect(k8sClient.Create(ctx, configMap(ns, "not-yet", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 7\n"}))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(hpa(g, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(7))
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "Accepted")).To(haveCondition(metav1.ConditionTrue, "Accepted", gw.Generation))
		}).Should(Succeed())
		Eventually(func(g Gomega) { before = resourceVersions(g, ns, "gw-istio") }).Should(Succeed())
	})

	It("reports unparseable YAML, naming the ConfigMap and the key", func() {
		updateConfigMap(ns, "not-yet", map[string]string{"horizontalPodAutoscaler": "spec: [unclosed"})
		expectInvalid("ConfigMap invalid-params/not-yet", "data.horizontalPodAutoscaler: not valid YAML")
	})

	It("reports a value of the wrong type", func() {
		updateConfigMap(ns, "not-yet", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: seven\n"})
		expectInvalid("data.horizontalPodAutoscaler: spec.maxReplicas must be int32")
	})

	It("reports an HPA minimum above its maximum", func() {
		updateConfigMap(ns, "not-yet", map[string]string{"horizontalPodAutoscaler": "spec:\n  minReplicas: 6\n  maxReplicas: 4\n"})
		expectInvalid("spec.minReplicas 6 is greater than spec.maxReplicas 4")
	})

	It("converges when the ConfigMap is fixed", func() {
		updateConfigMap(ns, "not-yet", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 8\n"})
		Eventually(func(g Gomega) {
			g.Expect(hpa(g, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(8))
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "Accepted").Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		Eventually(func(g Gomega) { before = resourceVersions(g, ns, "gw-istio") }).Should(Succeed())
	})

	It("reports a parametersRef of a kind other than ConfigMap", func() {
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) {
			gw.Spec.Infrastructure = &gatewayv1.GatewayInfrastructure{ParametersRef: &gatewayv1.LocalParametersReference{Group: "example.com", Kind: "GatewayConfig", Name: "x"}}
		})
		expectInvalid("parametersRef example.com/GatewayConfig x is not supported")
	})

	It("reports a ConfigMap deleted while in use", func() {
		// A ConfigMap of its own: the operator tells one identical Event per object at most
		// once per EventWindow, and "not-yet" was already reported missing above.
		Expect(k8sClient.Create(ctx, configMap(ns, "in-use", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 4\n"}))).To(Succeed())
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) { gw.Spec.Infrastructure = parametersRef("in-use") })
		Eventually(func(g Gomega) {
			g.Expect(condition(gateway(g, ns, "gw"), "Accepted").Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		Eventually(func(g Gomega) { before = resourceVersions(g, ns, "gw-istio") }).Should(Succeed())
		Expect(k8sClient.Delete(ctx, configMap(ns, "in-use", nil))).To(Succeed())
		expectInvalid("ConfigMap invalid-params/in-use does not exist")
	})
})

var _ = Describe("The allowlist", Ordered, func() {
	const ns = "allowlist"
	webhooksOff()

	BeforeAll(func() {
		convergedGateway(ns, "gw")
	})

	It("drops off-list fields, applies the rest, and names each dropped path and its ConfigMap", func() {
		Expect(k8sClient.Create(ctx, configMap(ns, "risky", map[string]string{
			"deployment": `
metadata:
  labels: {team: edge}
spec:
  template:
    spec:
      hostNetwork: true
      serviceAccountName: admin
      containers:
      - name: istio-proxy
        image: attacker/proxy
        securityContext: {privileged: true, runAsUser: 0}
        resources:
          requests: {cpu: 250m}
      - name: miner
        image: attacker/miner
`,
			"service":        "spec:\n  type: NodePort\n  externalIPs: [1.2.3.4]\n",
			"serviceAccount": "metadata: {}\n",
		}))).To(Succeed())
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) { gw.Spec.Infrastructure = parametersRef("risky") })

		Eventually(func(g Gomega) {
			d := deployment(g, ns, "gw-istio")
			g.Expect(d.Labels).To(HaveKeyWithValue("team", "edge"))
			g.Expect(d.Spec.Template.Spec.Containers).To(HaveLen(1))
			proxy := d.Spec.Template.Spec.Containers[0]
			g.Expect(proxy.Resources.Requests.Cpu().String()).To(Equal("250m"))
			g.Expect(proxy.Image).To(Equal(proxyImage))
			g.Expect(*proxy.SecurityContext.RunAsUser).To(BeEquivalentTo(1337))
			g.Expect(*proxy.SecurityContext.Privileged).To(BeFalse())
			g.Expect(d.Spec.Template.Spec.HostNetwork).To(BeFalse())
			g.Expect(d.Spec.Template.Spec.ServiceAccountName).To(Equal("gw-istio"))
			svc := service(g, ns, "gw-istio")
			g.Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeNodePort))
			g.Expect(svc.Spec.ExternalIPs).To(BeEmpty())
		}).Should(Succeed())

		wantDropped := []string{
			"ConfigMap allowlist/risky data.serviceAccount is not a customization key",
			"ConfigMap allowlist/risky data.deployment: spec.template.spec.containers[name=istio-proxy].image is not allowed",
			"ConfigMap allowlist/risky data.deployment: spec.template.spec.containers[name=istio-proxy].securityContext is not allowed",
			"ConfigMap allowlist/risky data.deployment: spec.template.spec.containers[name=miner] is not allowed; only the istio-proxy container can be customized",
			"ConfigMap allowlist/risky data.deployment: spec.template.spec.hostNetwork is not allowed",
			"ConfigMap allowlist/risky data.deployment: spec.template.spec.serviceAccountName is not allowed",
			"ConfigMap allowlist/risky data.service: spec.externalIPs is not allowed",
		}
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			c := condition(gw, status.ConditionCustomizationsApplied)
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "FieldsNotAllowed", gw.Generation))
			for _, want := range wantDropped {
				g.Expect(c.Message).To(ContainSubstring(want))
			}
			g.Expect(condition(gw, "Accepted").Status).To(Equal(metav1.ConditionTrue))
			var notes []string
			for _, e := range eventsFor(g, ns, "gw") {
				if e.Type == corev1.EventTypeWarning && e.Reason == "FieldsNotAllowed" {
					notes = append(notes, e.Note)
				}
			}
			g.Expect(notes).To(ContainElement(
				"Not applied from ConfigMap allowlist/risky: data.deployment: " +
					"spec.template.spec.containers[name=istio-proxy].image, spec.template.spec.containers[name=istio-proxy].securityContext, " +
					"spec.template.spec.containers[name=miner], spec.template.spec.hostNetwork, spec.template.spec.serviceAccountName; " +
					"data.service: spec.externalIPs; unknown data keys: serviceAccount"))
		}).Should(Succeed())
	})

	It("raises an HPA minReplicas below 2 to 2 and says so", func() {
		updateConfigMap(ns, "risky", map[string]string{"horizontalPodAutoscaler": "spec:\n  minReplicas: 1\n"})
		Eventually(func(g Gomega) {
			g.Expect(*hpa(g, ns, "gw-istio").Spec.MinReplicas).To(BeEquivalentTo(2))
			gw := gateway(g, ns, "gw")
			c := condition(gw, status.ConditionCustomizationsApplied)
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "ValuesAdjusted", gw.Generation))
			g.Expect(c.Message).To(ContainSubstring("data.horizontalPodAutoscaler: spec.minReplicas 1 is below the minimum of 2; 2 applied"))
		}).Should(Succeed())
	})

	It("reports unknown data keys and leaves no unapplied field unmentioned", func() {
		updateConfigMap(ns, "risky", map[string]string{"horizontalPodAutoscaler": "spec:\n  minReplicas: 3\n", "gateway": "x: y\n"})
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			c := condition(gw, status.ConditionCustomizationsApplied)
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "FieldsNotAllowed", gw.Generation))
			g.Expect(c.Message).To(Equal("Not applied: ConfigMap allowlist/risky data.gateway is not a customization key; known keys: deployment, service, horizontalPodAutoscaler, podDisruptionBudget"))
		}).Should(Succeed())
	})
})

var _ = Describe("Drift and ownership", Ordered, func() {
	const ns = "drift"

	BeforeAll(func() {
		convergedGateway(ns, "gw")
	})

	It("reverts a hand edit of a field the operator owns", func() {
		Eventually(func(g Gomega) {
			d := deployment(g, ns, "gw-istio")
			d.Spec.Template.Spec.Containers[0].Image = "hand/edited:1"
			g.Expect(k8sClient.Update(ctx, d)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			d := deployment(g, ns, "gw-istio")
			g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal(proxyImage))
		}).Should(Succeed())
	})

	It("recreates a deleted Service", func() {
		svc := service(Default, ns, "gw-istio")
		Expect(k8sClient.Delete(ctx, svc)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(service(g, ns, "gw-istio").UID).NotTo(Equal(svc.UID))
		}).Should(Succeed())
	})

	It("leaves the replica count the HPA controller sets alone", func() {
		Eventually(func(g Gomega) {
			d := deployment(g, ns, "gw-istio")
			d.Spec.Replicas = new(int32(4))
			g.Expect(client.WithFieldOwner(k8sClient, "kube-controller-manager").Update(ctx, d)).To(Succeed())
		}).Should(Succeed())
		// A change that re-applies the Deployment (an infrastructure label it carries) must
		// keep the HPA's count: seen applied first, then watched.
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) {
			gw.Spec.Infrastructure = &gatewayv1.GatewayInfrastructure{Labels: map[gatewayv1.LabelKey]gatewayv1.LabelValue{"touched": "yes"}}
		})
		holdsAfter(func(g Gomega) {
			g.Expect(deployment(g, ns, "gw-istio").Labels).To(HaveKeyWithValue("touched", "yes"))
		}, func(g Gomega) {
			g.Expect(*deployment(g, ns, "gw-istio").Spec.Replicas).To(BeEquivalentTo(4))
		})
	})

	It("never takes over an object it did not create, and says so", func() {
		createNamespace("takeover")
		foreign := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "gw-istio", Namespace: "takeover", Labels: map[string]string{"owner": "someone-else"}},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}, Selector: map[string]string{"app": "db"}},
		}
		Expect(k8sClient.Create(ctx, foreign)).To(Succeed())
		Expect(k8sClient.Create(ctx, httpGateway("takeover", "gw"))).To(Succeed())
		Eventually(func(g Gomega) {
			gw := gateway(g, "takeover", "gw")
			c := condition(gw, "Programmed")
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "Invalid", gw.Generation))
			g.Expect(c.Message).To(ContainSubstring("Service takeover/gw-istio already exist and are not managed by istio-gateway-operator"))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(eventsFor(g, "takeover", "gw")).To(ContainElement(SatisfyAll(
				HaveField("Type", corev1.EventTypeWarning),
				HaveField("Reason", "Invalid"),
				HaveField("Note", ContainSubstring("Service takeover/gw-istio already exist")),
			)))
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			svc := service(g, "takeover", "gw-istio")
			g.Expect(svc.ResourceVersion).To(Equal(foreign.ResourceVersion))
			d := &appsv1.Deployment{}
			g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, key("takeover", "gw-istio"), d))).To(BeTrue(), "nothing is half applied")
		}).Should(Succeed())
	})

	It("deletes the HPA and PDB when no customization asks for them", func() {
		createNamespace("no-hpa")
		Expect(k8sClient.Create(ctx, configMap("no-hpa", "no-scaling", map[string]string{"deployment": "spec:\n  replicas: 3\n"}))).To(Succeed())
		Expect(k8sClient.Create(ctx, httpGateway("no-hpa", "gw"))).To(Succeed())
		Eventually(func(g Gomega) { hpa(g, "no-hpa", "gw-istio") }).Should(Succeed())
		// Take the HPA away at the class level, for this test only, through a GatewayClass
		// that is not served: the served class keeps its defaults, so reference a
		// Gateway-level ConfigMap and empty the class defaults instead.
		updateConfigMap(systemNamespace, classDefaultsName, map[string]string{})
		updateGateway("no-hpa", "gw", func(gw *gatewayv1.Gateway) { gw.Spec.Infrastructure = parametersRef("no-scaling") })
		Eventually(func(g Gomega) {
			g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, key("no-hpa", "gw-istio"), &autoscalingv2.HorizontalPodAutoscaler{}))).To(BeTrue())
			g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, key("no-hpa", "gw-istio"), &policyv1.PodDisruptionBudget{}))).To(BeTrue())
			g.Expect(*deployment(g, "no-hpa", "gw-istio").Spec.Replicas).To(BeEquivalentTo(3))
		}).Should(Succeed())
		updateConfigMap(systemNamespace, classDefaultsName, defaultClassData)
		Eventually(func(g Gomega) { hpa(g, "no-hpa", "gw-istio") }).Should(Succeed())
	})

	It("deletes what it generated when a Gateway moves to another class", func() {
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) { gw.Spec.GatewayClassName = "other" })
		Eventually(func(g Gomega) {
			for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}, &corev1.ServiceAccount{}, &autoscalingv2.HorizontalPodAutoscaler{}, &policyv1.PodDisruptionBudget{}} {
				err := k8sClient.Get(ctx, key(ns, "gw-istio"), obj)
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), fmt.Sprintf("%T still exists", obj))
			}
		}).Should(Succeed())
	})
})

// reconcileCount reads controller-runtime's reconcile counter of one controller.
func reconcileCount(controller string) float64 {
	return metricSum("controller_runtime_reconcile_total", "controller", controller)
}

// metricSum adds up a counter's series that carry label=value in the process's
// controller-runtime registry.
func metricSum(name, label, value string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var total float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func countOfClass(gateways []gatewayv1.Gateway, class string) int {
	n := 0
	for _, gw := range gateways {
		if string(gw.Spec.GatewayClassName) == class {
			n++
		}
	}
	return n
}

// eventsSince keeps the Events recorded, or repeated, at or after since (the API stores
// microseconds).
func eventsSince(events []eventsv1.Event, since time.Time) []eventsv1.Event {
	since = since.Truncate(time.Microsecond)
	var out []eventsv1.Event
	for _, e := range events {
		last := e.EventTime.Time
		if e.Series != nil && e.Series.LastObservedTime.After(last) {
			last = e.Series.LastObservedTime.Time
		}
		if !last.Before(since) {
			out = append(out, e)
		}
	}
	return out
}

// containsAll matches a string holding every part.
func containsAll(parts []string) []types.GomegaMatcher {
	matchers := make([]types.GomegaMatcher, len(parts))
	for i, part := range parts {
		matchers[i] = ContainSubstring(part)
	}
	return matchers
}

// objectWrites drops from writes the Events and the revision Lease heartbeat (one PATCH
// every 20 s, whatever the Gateways do), leaving the writes of objects.
func objectWrites(writes map[string]int) map[string]int {
	for k := range writes {
		if strings.HasSuffix(k, " events") || k == "PATCH leases" {
			delete(writes, k)
		}
	}
	return writes
}

var _ = Describe("A steady state", func() {
	It("costs no write when a full resync finds nothing changed", func() {
		const ns = "steady"
		convergedGateway(ns, "gw")
		setLoadBalancerIP(ns, "gw-istio", "20.9.9.9")
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "Programmed").Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		// Let in-flight events settle: writes stop once every Gateway has converged.
		Eventually(func(g Gomega) {
			operatorRequests.Reset()
			g.Consistently(func() map[string]int { return objectWrites(operatorRequests.Writes()) }, "3s").Should(BeEmpty())
		}, "60s").Should(Succeed())

		// Force every Gateway of the class through a reconcile: the class's annotations
		// change, which maps to all of its Gateways.
		gateways := &gatewayv1.GatewayList{}
		Expect(k8sClient.List(ctx, gateways)).To(Succeed())
		reconcilesBefore := reconcileCount("gateway")
		Eventually(func(g Gomega) {
			gc := &gatewayv1.GatewayClass{}
			g.Expect(k8sClient.Get(ctx, key("", "istio"), gc)).To(Succeed())
			// Added beside the operator's own annotation, which removed would ask again for the class defaults.
			metav1.SetMetaDataAnnotation(&gc.ObjectMeta, "resync", strings.Repeat("x", 3))
			g.Expect(k8sClient.Update(ctx, gc)).To(Succeed())
		}).Should(Succeed())
		Eventually(func() float64 { return reconcileCount("gateway") - reconcilesBefore }).
			Should(BeNumerically(">=", countOfClass(gateways.Items, "istio")))
		// Events are left out: client-go's event series bookkeeping may still be patching
		// Events recorded by earlier specs; no Event is recorded by this resync (the
		// recorder's debug log stays silent) and every object write is counted.
		Consistently(func() map[string]int { return objectWrites(operatorRequests.Writes()) }, "3s").Should(BeEmpty(),
			func() string {
				return fmt.Sprintf("writes by namespace: %v; refused: %v", operatorRequests.WritesByNamespace(), operatorRequests.RefusedWrites())
			})
	})
})
