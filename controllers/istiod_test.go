package controllers_test

import (
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
	"github.com/kubegate/istio-gateway-operator/pkg/meshconfig"
	"github.com/kubegate/istio-gateway-operator/test/apicounter"
	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

// istiodFieldManager is the manager istiod's status writes are recorded under (its
// binary's name, from the user agent).
const istiodFieldManager = "pilot-discovery"

var _ = Describe("Beside istiod", Ordered, func() {
	const ns, rev = "beside-istiod", "beside"
	var requests *apicounter.Counter

	BeforeAll(func() {
		createNamespace(ns)
		requests = apicounter.New()
		done := make(chan struct{})
		_, cancel := runInstance(rev, 10*time.Second, requests, done, nil, func(o *controllers.Options) {
			o.StatusMode = controllers.StatusBesideIstiod
		})
		DeferCleanup(func() {
			cancel()
			Eventually(done).Should(BeClosed())
			lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: controllers.RevisionLeaseName(rev)}}
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, lease))).To(Succeed())
		})
		Expect(k8sClient.Create(ctx, configMap(ns, "options", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 4\n"}))).To(Succeed())
		gw := httpGateway(ns, "gw")
		gw.Labels = map[string]string{v1alpha1.RevisionLabel: rev}
		gw.Spec.Infrastructure = parametersRef("options")
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		// Gone before the instance is: a Gateway left labelled for an uninstalled revision
		// would be reported on by the suite's instance whenever the installed set changes.
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, gw)).To(Succeed()) })
	})

	It("generates the objects and writes only its own conditions, leaving Accepted, Programmed, listeners and addresses to istiod", func() {
		Eventually(func(g Gomega) {
			g.Expect(hpa(g, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(4))
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "gateway.istio.io/ResourcesApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", 1))
			g.Expect(condition(gw, "gateway.istio.io/CustomizationsApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", 1))
			g.Expect(statusFieldsOf(g, gw, v1alpha1.FieldManagerFor(rev))).To(ConsistOf(
				`f:conditions/k:{"type":"gateway.istio.io/CustomizationsApplied"}`,
				`f:conditions/k:{"type":"gateway.istio.io/ResourcesApplied"}`,
			), "the operator owns its own conditions and nothing else of the status")
		}).Should(Succeed())
	})

	It("never writes over istiod's conditions, and writes once when its own change", func() {
		By("playing istiod: a full status update, as it writes it")
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			for _, c := range []metav1.Condition{
				{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: "Resource accepted"},
				{Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed", Message: "Resource programmed, assigned to service(s) gw-istio.beside-istiod.svc.cluster.local:80"},
			} {
				c.ObservedGeneration, c.LastTransitionTime = gw.Generation, metav1.Now()
				setCondition(gw, c)
			}
			gw.Status.Addresses = []gatewayv1.GatewayStatusAddress{{Type: ptr.To(gatewayv1.HostnameAddressType), Value: "gw-istio.beside-istiod.svc.cluster.local"}}
			g.Expect(k8sClient.Status().Update(ctx, gw, client.FieldOwner(istiodFieldManager))).To(Succeed())
		}).Should(Succeed())

		By("changing what only the operator reports: which ConfigMap customizes the Gateway")
		Expect(k8sClient.Create(ctx, configMap(ns, "options-2", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 6\n"}))).To(Succeed())
		requests.Reset()
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) { gw.Spec.Infrastructure = parametersRef("options-2") })
		Eventually(func(g Gomega) {
			customized := condition(gateway(g, ns, "gw"), "gateway.istio.io/CustomizationsApplied")
			g.Expect(customized.Message).To(HaveSuffix("beside-istiod/options-2"))
			g.Expect(customized.ObservedGeneration).To(BeEquivalentTo(2))
			g.Expect(hpa(g, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(6))
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			g.Expect(condition(gw, "Accepted").Message).To(Equal("Resource accepted"))
			g.Expect(condition(gw, "Programmed").Message).To(HavePrefix("Resource programmed"))
			g.Expect(gw.Status.Addresses).To(HaveLen(1))
			// One status write for the change; a second, identical one when the HPA's own
			// event is reconciled before the first write reaches the cache.
			writes := requests.WritesIn(ns)
			g.Expect(writes).To(HaveKeyWithValue("PATCH horizontalpodautoscalers", 1))
			g.Expect(writes).To(HaveKeyWithValue("PATCH gateways/status", BeNumerically("<=", 2)))
			g.Expect(writes).To(HaveLen(2))
		}).Should(Succeed())
	})

	It("stands back while istiod's gateway deployment controller runs: one Event, a condition naming the fix, no object writes", func() {
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: controllers.IstiodDeploymentLeaseName(rev)},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("istiod-5c9d"), LeaseDurationSeconds: ptr.To(int32(30)),
				RenewTime: ptr.To(metav1.NewMicroTime(time.Now()))},
		}
		Expect(k8sClient.Create(ctx, lease)).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(gateway(g, ns, "gw"), "gateway.istio.io/ResourcesApplied")
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "IstiodDeploymentController", 2))
			g.Expect(c.Message).To(ContainSubstring("set PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER=false on istiod of revision beside"))
			g.Expect(condition(gateway(g, ns, "gw"), "gateway.istio.io/CustomizationsApplied")).To(haveCondition(metav1.ConditionFalse, "IstiodDeploymentController", 2),
				"nothing of the operator's is applied while istiod generates the objects")
			g.Expect(eventsFor(g, systemNamespace, lease.Name)).To(ContainElement(HaveField("Reason", "IstiodDeploymentController")))
		}).Should(Succeed())

		By("renewing the Lease as istiod does, and changing a customization meanwhile")
		requests.Reset()
		updateConfigMap(ns, "options-2", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 3\n"})
		renew := func() {
			Eventually(func(g Gomega) {
				fresh := &coordinationv1.Lease{}
				g.Expect(k8sClient.Get(ctx, key(systemNamespace, lease.Name), fresh)).To(Succeed())
				fresh.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
				g.Expect(k8sClient.Update(ctx, fresh)).To(Succeed())
			}).Should(Succeed())
		}
		renew()
		Consistently(func(g Gomega) {
			g.Expect(requests.WritesIn(ns)).To(BeEmpty(), "no object and no status write while istiod deploys")
			g.Expect(hpa(g, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(6))
		}).Should(Succeed())
		renew()
		Expect(eventsFor(Default, systemNamespace, lease.Name)).To(HaveLen(1), "one Event for the whole episode")
		Expect(eventsFor(Default, ns, "gw")).NotTo(ContainElement(HaveField("Reason", "IstiodDeploymentController")), "none per Gateway")

		By("resuming once istiod's controller is off (its Lease gone)")
		Expect(k8sClient.Delete(ctx, lease)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(condition(gateway(g, ns, "gw"), "gateway.istio.io/ResourcesApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", 2))
			g.Expect(condition(gateway(g, ns, "gw"), "gateway.istio.io/CustomizationsApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", 2))
			g.Expect(hpa(g, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(3))
		}).Should(Succeed())
	})
})

// statusFieldsOf lists the top-level status fields a field manager owns, with the keys of
// the list entries (conditions) it owns: "f:addresses", `f:conditions/k:{"type":"Accepted"}`.
func statusFieldsOf(g Gomega, gw *gatewayv1.Gateway, manager string) []string {
	var out []string
	for _, e := range gw.ManagedFields {
		if e.Manager != manager || e.Subresource != "status" || e.FieldsV1 == nil {
			continue
		}
		var fields map[string]map[string]map[string]any
		g.Expect(json.Unmarshal(e.FieldsV1.Raw, &fields)).To(Succeed())
		for field, entries := range fields["f:status"] {
			if field != "f:conditions" {
				out = append(out, field)
				continue
			}
			for k := range entries {
				if k != "." {
					out = append(out, field+"/"+k)
				}
			}
		}
	}
	return out
}

// setCondition replaces or adds a condition by type, as a status writer does.
func setCondition(gw *gatewayv1.Gateway, c metav1.Condition) {
	for i := range gw.Status.Conditions {
		if gw.Status.Conditions[i].Type == c.Type {
			gw.Status.Conditions[i] = c
			return
		}
	}
	gw.Status.Conditions = append(gw.Status.Conditions, c)
}

var _ = Describe("Proxies from the revision's own configuration", Ordered, func() {
	// Ranked below "default" (names order alphabetically), so that the suite's own instance
	// keeps every unlabelled Gateway meanwhile.
	const ns, rev = "revision-config", "canary"
	var requests *apicounter.Counter
	envOf := func(g Gomega) map[string]string {
		out := map[string]string{}
		for _, e := range deployment(g, ns, "gw-istio").Spec.Template.Spec.Containers[0].Env {
			out[e.Name] = e.Value
		}
		return out
	}

	BeforeAll(func() {
		createNamespace(ns)
		for _, cm := range localcluster.IstioRevisionConfigMaps(systemNamespace, rev) {
			if cm.Name == meshconfig.MeshConfigMapName(rev) {
				cm.Data[meshconfig.MeshKey] = "trustDomain: corp.example.org\ndefaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n"
			} else {
				cm.Data[meshconfig.ValuesKey] = `{"revision":"canary","global":{"hub":"mcr.microsoft.com/oss/istio","tag":"1.26.3","meshID":"corp-mesh","network":"net-west","multiCluster":{"clusterName":"cluster-west"}}}`
			}
			Expect(k8sClient.Create(ctx, cm)).To(Succeed())
			DeferCleanup(func() { Expect(k8sClient.Delete(ctx, cm)).To(Succeed()) })
		}
		requests = apicounter.New()
		done := make(chan struct{})
		_, cancel := runInstance(rev, 10*time.Second, requests, done, nil, func(o *controllers.Options) { o.ProxyImage = "" })
		DeferCleanup(func() {
			cancel()
			Eventually(done).Should(BeClosed())
			lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: controllers.RevisionLeaseName(rev)}}
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, lease))).To(Succeed())
		})
		gw := httpGateway(ns, "gw")
		gw.Labels = map[string]string{v1alpha1.RevisionLabel: rev}
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, gw)).To(Succeed()) })
	})

	It("renders the image, trust domain, mesh, cluster and network the revision names", func() {
		Eventually(func(g Gomega) {
			d := deployment(g, ns, "gw-istio")
			g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("mcr.microsoft.com/oss/istio/proxyv2:1.26.3"))
			g.Expect(d.Spec.Template.Labels).NotTo(HaveKey("topology.istio.io/network"), "as istiod's template: only a Gateway's own label puts it on the pods")
			g.Expect(envOf(g)).To(SatisfyAll(
				HaveKeyWithValue("TRUST_DOMAIN", "corp.example.org"),
				HaveKeyWithValue("ISTIO_META_MESH_ID", "corp-mesh"),
				HaveKeyWithValue("ISTIO_META_CLUSTER_ID", "cluster-west"),
				HaveKeyWithValue("ISTIO_META_NETWORK", "net-west"),
				HaveKeyWithValue("ISTIO_META_DNS_CAPTURE", "true"),
				HaveKeyWithValue("CA_ADDR", "istiod-canary.aks-istio-system.svc:15012"),
			))
		}).Should(Succeed())
	})

	It("rolls the proxies with one write per Deployment when the revision's mesh config changes", func() {
		// Let the Gateway's first convergence finish: writes stop.
		Eventually(func(g Gomega) {
			requests.Reset()
			g.Consistently(func() map[string]int { return requests.WritesIn(ns) }, "2s").Should(BeEmpty())
		}, "30s").Should(Succeed())
		updateConfigMap(systemNamespace, meshconfig.MeshConfigMapName(rev), map[string]string{meshconfig.MeshKey: "trustDomain: corp2.example.org\n"})
		Eventually(func(g Gomega) {
			g.Expect(envOf(g)).To(HaveKeyWithValue("TRUST_DOMAIN", "corp2.example.org"))
			g.Expect(envOf(g)).NotTo(HaveKey("ISTIO_META_DNS_CAPTURE"))
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(requests.WritesIn(ns)).To(Equal(map[string]int{"PATCH deployments": 1}))
		}).Should(Succeed())
	})

	It("reports a missing injector ConfigMap instead of guessing the image, and changes nothing", func() {
		before := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, key(systemNamespace, meshconfig.InjectorConfigMapName(rev)), before)).To(Succeed())
		Expect(k8sClient.Delete(ctx, before)).To(Succeed())
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "gw")
			c := condition(gw, "gateway.istio.io/ResourcesApplied")
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "RevisionConfigInvalid", 1))
			g.Expect(c.Message).To(ContainSubstring("ConfigMap aks-istio-system/istio-sidecar-injector-canary does not exist"))
			g.Expect(condition(gw, "Programmed").Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())
		restored := before.DeepCopy()
		restored.ResourceVersion, restored.UID = "", ""
		Expect(k8sClient.Create(ctx, restored)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(condition(gateway(g, ns, "gw"), "gateway.istio.io/ResourcesApplied")).To(haveCondition(metav1.ConditionTrue, "Applied", 1))
		}).Should(Succeed())
	})
})
