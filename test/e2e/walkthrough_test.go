//go:build e2e

package e2e

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
	"github.com/kubegate/istio-gateway-operator/test/e2e/cluster"
	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

const (
	generated   = "httpbin-gateway-istio"
	gatewayKind = "gateways.gateway.networking.k8s.io"
	configLabel = "test.azureservicemesh.io/deployment-config"
	samples     = "../../config/samples/"
)

var operatorIdentity = "system:serviceaccount:" + v1alpha1.DefaultSystemNamespace + ":" + cluster.OperatorServiceAccount

var _ = Describe("The operator, as shipped", Ordered, func() {
	BeforeAll(func(ctx SpecContext) {
		// The walkthrough edits the class defaults (case A, then a policy); the specs that
		// Ginkgo runs after it, in whatever order, see them as they were.
		key := client.ObjectKey{Namespace: v1alpha1.DefaultSystemNamespace, Name: "istio-gateway-class-defaults"}
		saved := &corev1.ConfigMap{}
		Eventually(func() error { return env.Admin().Get(ctx, key, saved) }).Should(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			Eventually(func() error {
				current := &corev1.ConfigMap{}
				if err := env.Admin().Get(ctx, key, current); err != nil {
					return err
				}
				current.Data, current.Labels = saved.Data, saved.Labels
				return env.Admin().Update(ctx, current)
			}).Should(Succeed())
		})
	})

	It("runs under its ServiceAccount with only the generated RBAC", func(ctx SpecContext) {
		can := func(verb, resource string, flags ...string) string {
			args := append([]string{"auth", "can-i", verb, resource, "--as=" + operatorIdentity}, flags...)
			stdout, _, _ := env.Kubectl(ctx, "", args...)
			return strings.TrimSpace(stdout)
		}
		Expect(can("patch", "deployments", "-n", "default")).To(Equal("yes"))
		Expect(can("patch", "gateways", "--subresource=status", "-n", "default")).To(Equal("yes"))
		Expect(can("get", "secrets", "-n", "default")).To(Equal("yes"), "listeners' certificateRefs are read")
		Expect(can("patch", "secrets", "-n", "default")).To(Equal("no"))
		Expect(can("delete", "secrets", "-n", "default")).To(Equal("no"))
		Expect(can("update", "secrets/"+controllers.DefaultWebhookSecret, "-n", v1alpha1.DefaultSystemNamespace)).To(Equal("yes"), "its webhook certificate's Secret")
		Expect(can("update", "secrets/istio-ca-secret", "-n", v1alpha1.DefaultSystemNamespace)).To(Equal("no"), "istiod's CA beside it")
		Expect(can("create", "secrets", "-n", "default")).To(Equal("no"))
		Expect(can("update", "validatingwebhookconfigurations/"+controllers.DefaultWebhookConfiguration)).To(Equal("yes"))
		Expect(can("update", "validatingwebhookconfigurations/istio-validator-istio-system")).To(Equal("no"))
		Expect(can("create", "pods", "-n", "default")).To(Equal("no"))
		Expect(can("create", "configmaps", "-n", "default")).To(Equal("no"), "ConfigMap create is for the system namespace only")
		Expect(can("create", "configmaps", "-n", v1alpha1.DefaultSystemNamespace)).To(Equal("yes"))
		Expect(can("create", "clusterrolebindings")).To(Equal("no"))
		Expect(os.ReadFile(env.OperatorKubeconfig)).NotTo(ContainSubstring("client-certificate"), "the operator holds a token only")

		Eventually(func(g Gomega) {
			r, err := row(ctx, "gatewayclass", "istio")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r).To(HaveKeyWithValue("ACCEPTED", "True"))
		}).Should(Succeed())
	})

	It("has two simulated nodes Ready", func(ctx SpecContext) {
		out := kubectl(ctx, "get", "nodes", "--no-headers")
		Expect(strings.Count(out, " Ready ")).To(BeNumerically(">=", 2), out)
	})

	It("provisions the walkthrough's Gateway: Deployment 2/2, a LoadBalancer Service, HPA 2/5, PDB 1", func(ctx SpecContext) {
		kubectl(ctx, "apply", "-f", samples+"httpbin.yaml", "-f", samples+"httpbin-gateway.yaml")

		By("kubectl wait --for=condition=programmed")
		kubectl(ctx, "wait", "--for=condition=programmed", gatewayKind, "httpbin-gateway", "--timeout=120s")

		Eventually(func(g Gomega) {
			r, err := row(ctx, "deployment", generated)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r).To(HaveKeyWithValue("READY", "2/2"))
			g.Expect(r).To(HaveKeyWithValue("AVAILABLE", "2"))
		}).Should(Succeed())

		var externalIP string
		Eventually(func(g Gomega) {
			r, err := row(ctx, "service", generated)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r).To(HaveKeyWithValue("TYPE", "LoadBalancer"))
			g.Expect(r["PORT(S)"]).To(MatchRegexp(`^15021:\d+/TCP,80:\d+/TCP$`))
			externalIP = r["EXTERNAL-IP"]
			g.Expect(externalIP).NotTo(Or(BeEmpty(), Equal("<pending>")))
		}).Should(Succeed())
		Expect(inPool(externalIP)).To(BeTrue(), "%s from MetalLB's pool %s", externalIP, cluster.AddressPool)
		Expect(kubectl(ctx, "get", gatewayKind, "httpbin-gateway", "-ojsonpath={.status.addresses[0].value}")).To(Equal(externalIP))

		Eventually(func(g Gomega) {
			r, err := row(ctx, "hpa", generated)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r).To(HaveKeyWithValue("REFERENCE", "Deployment/"+generated))
			g.Expect(r).To(HaveKeyWithValue("MINPODS", "2"))
			g.Expect(r).To(HaveKeyWithValue("MAXPODS", "5"))
			g.Expect(r).To(HaveKeyWithValue("REPLICAS", "2"))
		}).Should(Succeed())

		By("the disruption controller computing the PDB's allowed disruptions from two healthy pods")
		Eventually(func(g Gomega) {
			r, err := row(ctx, "pdb", generated)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r).To(HaveKeyWithValue("MIN AVAILABLE", "1"))
			g.Expect(r).To(HaveKeyWithValue("MAX UNAVAILABLE", "N/A"))
			g.Expect(r).To(HaveKeyWithValue("ALLOWED DISRUPTIONS", "1"))
		}).Should(Succeed())

		By("the scheduler spreading nothing onto a missing node: every gateway pod is bound and running")
		pods := kubectl(ctx, "get", "pods", "-l", "gateway.networking.k8s.io/gateway-name=httpbin-gateway",
			"-o", `jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{"\n"}{end}`)
		lines := strings.Split(strings.TrimSpace(pods), "\n")
		Expect(lines).To(HaveLen(2), pods)
		Expect(lines).To(HaveEach(MatchRegexp(`^kwok-node-\d Running$`)))

		Expect(kubectl(ctx, "get", gatewayKind, "httpbin-gateway")).To(MatchRegexp(`httpbin-gateway\s+istio\s+` + strings.ReplaceAll(externalIP, ".", `\.`) + `\s+True`))
	})

	It("applies case A, the class defaults: HPA 3/6 and the class's label; the HPA scales to 3", func(ctx SpecContext) {
		kubectl(ctx, "replace", "-f", samples+"class-defaults-case-a.yaml")
		Eventually(func(g Gomega) {
			r, err := row(ctx, "hpa", generated)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r).To(HaveKeyWithValue("MINPODS", "3"))
			g.Expect(r).To(HaveKeyWithValue("MAXPODS", "6"))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			r, err := row(ctx, "deployment", generated, "-L", configLabel)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r).To(HaveKeyWithValue("DEPLOYMENT-CONFIG", "updated"))
			g.Expect(r).To(HaveKeyWithValue("READY", "3/3"), "the HPA controller raises the replicas to its new minimum")
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			r, err := row(ctx, "pdb", generated)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r).To(HaveKeyWithValue("ALLOWED DISRUPTIONS", "2"))
		}).Should(Succeed())
	})

	It("applies case B, the Gateway's own ConfigMap over the class: HPA 2/4 and the Gateway's label", func(ctx SpecContext) {
		kubectl(ctx, "apply", "-f", samples+"gateway-options-case-b.yaml")
		Eventually(func(g Gomega) {
			r, err := row(ctx, "hpa", generated)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r).To(HaveKeyWithValue("MINPODS", "2"))
			g.Expect(r).To(HaveKeyWithValue("MAXPODS", "4"))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			r, err := row(ctx, "deployment", generated, "-L", configLabel)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r).To(HaveKeyWithValue("DEPLOYMENT-CONFIG", "updated-per-gateway"))
		}).Should(Succeed())
		Expect(kubectl(ctx, "get", gatewayKind, "httpbin-gateway", "-o",
			`jsonpath={.status.conditions[?(@.type=="gateway.istio.io/CustomizationsApplied")].message}`)).
			To(Equal("Applied ConfigMaps aks-istio-system/istio-gateway-class-defaults, default/gw-options"))
	})

	It("renders and validates against the cluster: manager render and validate --from-cluster", func(ctx SpecContext) {
		root, err := localcluster.ModuleRoot()
		Expect(err).NotTo(HaveOccurred())
		manager := func(args ...string) (string, error) {
			cmd := exec.CommandContext(ctx, filepath.Join(root, "bin", "manager"), append(args[:1:1], append([]string{"--from-cluster", "--kubeconfig=" + env.AdminKubeconfig}, args[1:]...)...)...)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		out, err := manager("render", "-n", "default")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("# Gateway default/httpbin-gateway\n"))
		Expect(out).To(ContainSubstring("name: " + generated))
		Expect(out).To(MatchRegexp(`maxReplicas: 4\b`), "case B's HPA, as in force")

		out, err = manager("validate", samples+"bad-class-defaults.yaml")
		Expect(err).To(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("data.deployment: spec.template.spec.hostNetwork is not allowed"))
		Expect(out).To(ContainSubstring("data.horizontalPodAutoscaler: spec.minReplicas 1 is below the minimum of 2"))
	})

	It("refuses an off-list class ConfigMap through kubectl, naming every field, and keeps the one in force", func(ctx SpecContext) {
		before := kubectl(ctx, "get", "configmap", "-n", v1alpha1.DefaultSystemNamespace, "istio-gateway-class-defaults", "-o", "jsonpath={.metadata.resourceVersion}")
		_, stderr, err := env.Kubectl(ctx, "", "replace", "-f", samples+"bad-class-defaults.yaml")
		Expect(err).To(HaveOccurred())
		Expect(stderr).To(ContainSubstring(`admission webhook "class-defaults.configmaps.gateway.istio.io" denied the request`))
		Expect(stderr).To(ContainSubstring("data.deployment: spec.template.spec.hostNetwork is not allowed"))
		Expect(stderr).To(ContainSubstring("data.deployment: spec.template.spec.containers[name=istio-proxy].securityContext is not allowed"))
		Expect(stderr).To(ContainSubstring("data.horizontalPodAutoscaler: spec.minReplicas 1 is below the minimum of 2"))
		Expect(kubectl(ctx, "get", "configmap", "-n", v1alpha1.DefaultSystemNamespace, "istio-gateway-class-defaults", "-o", "jsonpath={.metadata.resourceVersion}")).To(Equal(before))
	})

	It("holds a Gateway owner to the platform's policy: the override refused at admission, the enforced values kept", func(ctx SpecContext) {
		kubectl(ctx, "replace", "-f", samples+"class-defaults-policy.yaml")
		nodeSelector := func() string {
			return kubectl(ctx, "get", "deployment", generated, "-o", "jsonpath={.spec.template.spec.nodeSelector}")
		}
		internal := func() string {
			return kubectl(ctx, "get", "service", generated, "-o", `jsonpath={.metadata.annotations.service\.beta\.kubernetes\.io/azure-load-balancer-internal}`)
		}
		Eventually(nodeSelector).Should(Equal(`{"kubernetes.io/os":"linux"}`))
		Eventually(internal).Should(Equal("true"))

		_, stderr, err := env.Kubectl(ctx, "", "apply", "-f", samples+"tenant-forbidden-override.yaml")
		Expect(err).To(HaveOccurred())
		Expect(stderr).To(ContainSubstring(`admission webhook "gateway-parameters.configmaps.gateway.istio.io" denied the request`))
		Expect(stderr).To(ContainSubstring("data.deployment: spec.template.spec.nodeSelector is set only by the class level (GatewayClass istio policy, rule enforced)"))
		Expect(stderr).To(ContainSubstring("data.service: metadata.annotations.service.beta.kubernetes.io/azure-load-balancer-internal is set only by the class level (GatewayClass istio policy, rule enforced)"))
		Expect(stderr).To(ContainSubstring("data.horizontalPodAutoscaler: spec.maxReplicas 50 is above the maximum of 10 (GatewayClass istio policy, rule maximums)"))

		Consistently(nodeSelector, "3s").Should(Equal(`{"kubernetes.io/os":"linux"}`))
		Expect(internal()).To(Equal("true"))
		r, err := row(ctx, "hpa", generated)
		Expect(err).NotTo(HaveOccurred())
		Expect(r).To(HaveKeyWithValue("MAXPODS", "4"), "the Gateway's ConfigMap in force is still case B's")
	})

	It("garbage-collects everything it generated when the Gateway is deleted", func(ctx SpecContext) {
		kubectl(ctx, "delete", gatewayKind, "httpbin-gateway", "--wait=true")
		Eventually(func(g Gomega) {
			out, stderr, err := env.Kubectl(ctx, "", "get", "deployment,service,hpa,pdb,serviceaccount,replicaset,pod",
				"-l", "gateway.networking.k8s.io/gateway-name=httpbin-gateway", "-o", "name")
			g.Expect(err).NotTo(HaveOccurred(), stderr)
			g.Expect(strings.TrimSpace(out)).To(BeEmpty())
		}).Should(Succeed())
		for _, kind := range []string{"deployment", "service", "hpa", "pdb", "serviceaccount"} {
			_, stderr, err := env.Kubectl(ctx, "", "get", kind, generated)
			Expect(err).To(HaveOccurred(), kind)
			Expect(stderr).To(ContainSubstring("NotFound"), kind)
		}
		By("the sample app, which the operator does not own, still being there")
		kubectl(ctx, "get", "deployment", "httpbin")
	})

	It("never met a permission it lacked", func() {
		log, err := os.ReadFile(env.ManagerLog)
		Expect(err).NotTo(HaveOccurred())
		Expect(linesMatching(log, `(?i)forbidden|panic`)).To(BeEmpty())
		Expect(linesMatching(log, `Successfully acquired lease`)).NotTo(BeEmpty(), "leader election ran under the ServiceAccount")
	})
})

func linesMatching(log []byte, pattern string) []string {
	re := regexp.MustCompile(pattern)
	var out []string
	for _, line := range strings.Split(string(log), "\n") {
		if re.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

func inPool(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	first, last, _ := strings.Cut(cluster.AddressPool, "-")
	return addr.Compare(netip.MustParseAddr(first)) >= 0 && addr.Compare(netip.MustParseAddr(last)) <= 0
}
