package controllers_test

import (
	"encoding/json"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
)

var _ = Describe("manager render", func() {
	It("prints, for a Gateway, exactly the fields the reconciler applied to each object", func() {
		const ns = "render-offline"
		createNamespace(ns)
		options := configMap(ns, "options", map[string]string{
			"horizontalPodAutoscaler": "spec:\n  maxReplicas: 4\n",
			"deployment":              "metadata:\n  labels: {team: a}\nspec:\n  template:\n    spec:\n      containers:\n      - name: istio-proxy\n        resources: {requests: {cpu: 200m}}\n",
		})
		Expect(k8sClient.Create(ctx, options)).To(Succeed())
		gw := httpGateway(ns, "gw")
		gw.Spec.Infrastructure = parametersRef("options")
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, gw)).To(Succeed()) })
		Eventually(func(g Gomega) { g.Expect(hpa(g, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(4)) }).Should(Succeed())

		// The manifests as a user keeps them, with the cluster's Gateway (its UID names the owner).
		live := gateway(Default, ns, "gw")
		classDefaults := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, key(systemNamespace, classDefaultsName), classDefaults)).To(Succeed())
		renderings, err := controllers.RenderOffline(ctx, scheme, []client.Object{live, options, classDefaults},
			controllers.Options{SystemNamespace: systemNamespace, ProxyImage: proxyImage})
		Expect(err).NotTo(HaveOccurred())
		Expect(renderings).To(HaveLen(1))
		Expect(renderings[0].Problem).To(BeEmpty())
		Expect(renderings[0].Objects).To(HaveLen(5))

		expectRenderedAsApplied(ns, renderings[0].Objects)

		By("reading the same inputs from the cluster, as manager render --from-cluster does")
		inputs, err := controllers.ClusterInputs(ctx, k8sClient, scheme, controllers.Options{SystemNamespace: systemNamespace}, ns, nil)
		Expect(err).NotTo(HaveOccurred())
		fromCluster, err := controllers.RenderOffline(ctx, scheme, inputs, controllers.Options{SystemNamespace: systemNamespace, ProxyImage: proxyImage})
		Expect(err).NotTo(HaveOccurred())
		Expect(fromCluster).To(HaveLen(1))
		Expect(fromCluster[0].Problem).To(BeEmpty())
		Expect(fromCluster[0].Objects).To(Equal(renderings[0].Objects), "the cluster's inputs render what the manifests' do")

		By("laying a changed ConfigMap over the cluster's, and a new Gateway naming a ConfigMap only the cluster has, as a pull request would")
		changed := options.DeepCopy()
		changed.ResourceVersion = ""
		changed.Data["horizontalPodAutoscaler"] = "spec:\n  maxReplicas: 7\n"
		other := configMap(ns, "other-options", map[string]string{"horizontalPodAutoscaler": "spec:\n  maxReplicas: 5\n"})
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
		newcomer := httpGateway(ns, "newcomer")
		newcomer.Spec.Infrastructure = parametersRef("other-options")
		world, err := controllers.ClusterInputs(ctx, k8sClient, scheme, controllers.Options{SystemNamespace: systemNamespace}, ns, []client.Object{changed, newcomer})
		Expect(err).NotTo(HaveOccurred())
		proposed, err := controllers.RenderOffline(ctx, scheme, world, controllers.Options{SystemNamespace: systemNamespace, ProxyImage: proxyImage})
		Expect(err).NotTo(HaveOccurred())
		hpaBodies := map[string]string{}
		for _, r := range proposed {
			Expect(r.Problem).To(BeEmpty(), r.Gateway)
			for _, body := range r.Objects {
				if strings.Contains(string(body), `"kind":"HorizontalPodAutoscaler"`) {
					hpaBodies[r.Gateway] = string(body)
				}
			}
		}
		Expect(hpaBodies[ns+"/gw"]).To(ContainSubstring(`"maxReplicas":7`))
		Expect(hpaBodies[ns+"/newcomer"]).To(ContainSubstring(`"maxReplicas":5`), "the new Gateway's ConfigMap, read from the cluster")
		Expect(hpa(Default, ns, "gw-istio").Spec.MaxReplicas).To(BeEquivalentTo(4), "render wrote to the cluster")
	})
})

// expectRenderedAsApplied compares each apply body with the fields the operator owns on
// the live object of its kind.
func expectRenderedAsApplied(ns string, bodies [][]byte) {
	GinkgoHelper()
	manager := v1alpha1.FieldManagerFor("")
	applied := func(kind string) any {
		name := key(ns, "gw-istio")
		var extracted any
		var err error
		switch kind {
		case "ServiceAccount":
			obj := &corev1.ServiceAccount{}
			Expect(k8sClient.Get(ctx, name, obj)).To(Succeed())
			extracted, err = corev1ac.ExtractServiceAccount(obj, manager)
		case "Deployment":
			obj := &appsv1.Deployment{}
			Expect(k8sClient.Get(ctx, name, obj)).To(Succeed())
			extracted, err = appsv1ac.ExtractDeployment(obj, manager)
		case "Service":
			obj := &corev1.Service{}
			Expect(k8sClient.Get(ctx, name, obj)).To(Succeed())
			extracted, err = corev1ac.ExtractService(obj, manager)
		case "HorizontalPodAutoscaler":
			obj := &autoscalingv2.HorizontalPodAutoscaler{}
			Expect(k8sClient.Get(ctx, name, obj)).To(Succeed())
			extracted, err = autoscalingv2ac.ExtractHorizontalPodAutoscaler(obj, manager)
		case "PodDisruptionBudget":
			obj := &policyv1.PodDisruptionBudget{}
			Expect(k8sClient.Get(ctx, name, obj)).To(Succeed())
			extracted, err = policyv1ac.ExtractPodDisruptionBudget(obj, manager)
		}
		Expect(err).NotTo(HaveOccurred())
		return extracted
	}
	for _, body := range bodies {
		var head struct{ Kind string }
		Expect(json.Unmarshal(body, &head)).To(Succeed())
		owned, err := json.Marshal(applied(head.Kind))
		Expect(err).NotTo(HaveOccurred())
		Expect(body).To(MatchJSON(owned), "%s: what render prints is what the operator owns on the live object", head.Kind)
	}
}
