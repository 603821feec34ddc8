//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
	"github.com/kubegate/istio-gateway-operator/test/e2e/cluster"
	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

// The rollout specs change a serving Gateway in every way that replaces or removes its
// pods and hold the ready endpoints of its Service, as the EndpointSlice controller
// publishes them, to what the rendered strategy and the PDB promise. The gateway pods ask
// kwok for the time a real proxy takes: Ready 2 s after they start (configuration from
// istiod), gone 3 s after deletion (Envoy's drain).
const (
	rolloutNamespace = "rollouts"
	rolloutGateway   = "edge"
	rolloutService   = rolloutGateway + "-istio"
	upgradeRevision  = "asm-1-27"
	upgradeTag       = "1.27.2"
)

const rolloutManifest = `apiVersion: v1
kind: Namespace
metadata:
  name: rollouts
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: edge-options
  namespace: rollouts
data:
  horizontalPodAutoscaler: |
    spec:
      minReplicas: %d
      maxReplicas: %d
  podDisruptionBudget: |
    spec:
      minAvailable: 1
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: rollouts
spec:
  gatewayClassName: istio
  infrastructure:
    annotations:
      pod-ready.stage.kwok.x-k8s.io/delay: 2s
      pod-delete.stage.kwok.x-k8s.io/delay: 3s
    parametersRef:
      group: ""
      kind: ConfigMap
      name: edge-options
  listeners:
  - name: http
    port: 80
    protocol: HTTP
`

var _ = Describe("Changes without downtime, measured at the endpoints", Ordered, func() {
	var watch *endpointWatch

	// change runs one change and holds the ready endpoints to floor from its start until
	// done holds and the Service has after ready endpoints again (before, when it starts).
	change := func(ctx context.Context, what string, floor, before, after int, act func(), done func(Gomega)) {
		GinkgoHelper()
		Eventually(watch.Now).Should(Equal(before), "ready endpoints before %s", what)
		start := time.Now()
		act()
		Eventually(done, 3*time.Minute, time.Second).Should(Succeed(), what)
		Eventually(watch.Now, time.Minute).Should(Equal(after), "ready endpoints after %s", what)
		w := watch.Between(start, time.Now())
		took := w.to.Sub(w.from).Round(100 * time.Millisecond)
		GinkgoWriter.Printf("%s: %s, fewest ready endpoints %d (floor %d), %s below the floor, %s without any:\n%s",
			what, took, w.Min(), floor, w.Below(floor).Round(100*time.Millisecond), w.Below(1).Round(100*time.Millisecond), w)
		AddReportEntry(what, fmt.Sprintf("took %s; fewest ready endpoints %d (floor %d); time below the floor %s; without any %s",
			took, w.Min(), floor, w.Below(floor).Round(100*time.Millisecond), w.Below(1).Round(100*time.Millisecond)))
		Expect(w.Min()).To(BeNumerically(">=", floor), "ready endpoints during %s:\n%s", what, w)
		Expect(w.Min()).To(BeNumerically(">", 0), "ready endpoints during %s:\n%s", what, w)
	}
	rolledOut := func(ctx context.Context, image string) func(Gomega) {
		return func(g Gomega) {
			out := kubectl(ctx, "get", "deployment", "-n", rolloutNamespace, rolloutService, "-o",
				`jsonpath={.spec.template.spec.containers[0].image} {.metadata.generation} {.status.observedGeneration} {.spec.replicas} {.status.updatedReplicas} {.status.availableReplicas} {.status.replicas}`)
			f := strings.Fields(out)
			g.Expect(f).To(HaveLen(7), out)
			g.Expect(f[0]).To(Equal(image))
			g.Expect(f[1]).To(Equal(f[2]), "the Deployment controller saw the change")
			g.Expect(f[4]).To(Equal(f[3]), "every replica updated")
			g.Expect(f[5]).To(Equal(f[3]), "every replica available")
			g.Expect(f[6]).To(Equal(f[3]), "no old replica left")
		}
	}
	replicas := func(ctx context.Context, n int) func(Gomega) {
		return func(g Gomega) {
			g.Expect(kubectl(ctx, "get", "deployment", "-n", rolloutNamespace, rolloutService, "-o", "jsonpath={.status.readyReplicas}/{.status.replicas}")).
				To(Equal(fmt.Sprintf("%d/%d", n, n)))
		}
	}
	oldImage := localcluster.IstioProxyHub + "/proxyv2:" + localcluster.IstioProxyTag
	newImage := localcluster.IstioProxyHub + "/proxyv2:" + upgradeTag

	BeforeAll(func(ctx SpecContext) {
		kubectlApply(ctx, fmt.Sprintf(rolloutManifest, 4, 5))
		kubectl(ctx, "wait", "--for=condition=programmed", gatewayKind, "-n", rolloutNamespace, rolloutGateway, "--timeout=120s")
		var err error
		watch, err = watchReadyEndpoints(env.Config, rolloutNamespace, rolloutService)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			watch.Stop()
			// The Gateway first, so that nothing is reconciled into a terminating namespace.
			kubectl(ctx, "delete", gatewayKind, "-n", rolloutNamespace, rolloutGateway, "--wait=true")
			Eventually(func() string {
				return kubectl(ctx, "get", "deployment,service,hpa,pdb,serviceaccount", "-n", rolloutNamespace,
					"-l", v1alpha1.GatewayNameLabel+"="+rolloutGateway, "-o", "name")
			}).Should(BeEmpty())
			kubectl(ctx, "delete", "namespace", rolloutNamespace, "--wait=false")
		})
		By("the HPA raising the Deployment to its minimum of 4")
		Eventually(replicas(ctx, 4), 2*time.Minute).Should(Succeed())
	})

	It("upgrades the revision, a new proxy image, keeping every serving pod until its replacement is ready", func(ctx SpecContext) {
		Expect(localcluster.InstallIstioRevisionWithTag(ctx, env.Admin(), v1alpha1.DefaultSystemNamespace, upgradeRevision, upgradeTag)).To(Succeed())
		var upgraded *localcluster.Process
		change(ctx, "revision upgrade (new proxy image)", 4, 4, 4, func() {
			var err error
			upgraded, err = env.StartOperator(ctx, append([]string{"--revision=" + upgradeRevision, "--enable-webhooks=false"}, cluster.StandaloneArgs...)...)
			Expect(err).NotTo(HaveOccurred())
		}, rolledOut(ctx, newImage))

		By("rolling back: the new revision uninstalled, the default one takes the Gateway back")
		change(ctx, "rollback (previous proxy image)", 4, 4, 4, func() {
			upgraded.Stop(10 * time.Second)
			kubectl(ctx, "delete", "lease", "-n", v1alpha1.DefaultSystemNamespace, controllers.RevisionLeaseName(upgradeRevision))
		}, rolledOut(ctx, oldImage))
		for _, cm := range localcluster.IstioRevisionConfigMapsWithTag(v1alpha1.DefaultSystemNamespace, upgradeRevision, upgradeTag) {
			kubectl(ctx, "delete", "configmap", "-n", cm.Namespace, cm.Name)
		}
	})

	It("rolls the pods for a class-wide change of resources without a lost endpoint", func(ctx SpecContext) {
		name := v1alpha1.ClassDefaultsConfigMapName("istio")
		original := kubectl(ctx, "get", "configmap", "-n", v1alpha1.DefaultSystemNamespace, name, "-o", "jsonpath={.data.deployment}")
		var fragment map[string]any
		Expect(yaml.Unmarshal([]byte(original), &fragment)).To(Succeed())
		if fragment == nil {
			fragment = map[string]any{}
		}
		spec, _ := fragment["spec"].(map[string]any)
		if spec == nil {
			spec = map[string]any{}
		}
		Expect(spec).NotTo(HaveKey("template"), "the class defaults in force set no pod template; this spec adds one")
		spec["template"] = map[string]any{"spec": map[string]any{"containers": []any{map[string]any{
			"name": "istio-proxy", "resources": map[string]any{"requests": map[string]any{"cpu": "150m", "memory": "160Mi"}},
		}}}}
		fragment["spec"] = spec
		changed, err := yaml.Marshal(fragment)
		Expect(err).NotTo(HaveOccurred())
		patch := func(deployment string) string {
			js, err := json.Marshal(map[string]any{"data": map[string]any{"deployment": deployment}})
			Expect(err).NotTo(HaveOccurred())
			return string(js)
		}
		DeferCleanup(func(ctx SpecContext) {
			kubectl(ctx, "patch", "configmap", "-n", v1alpha1.DefaultSystemNamespace, name, "--type=merge", "-p", patch(original))
		})
		change(ctx, "class-wide resources change", 4, 4, 4, func() {
			kubectl(ctx, "patch", "configmap", "-n", v1alpha1.DefaultSystemNamespace, name, "--type=merge", "-p", patch(string(changed)))
		}, func(g Gomega) {
			g.Expect(kubectl(ctx, "get", "deployment", "-n", rolloutNamespace, rolloutService, "-o",
				"jsonpath={.spec.template.spec.containers[0].resources.requests.cpu}")).To(Equal("150m"))
			rolledOut(ctx, oldImage)(g)
		})
	})

	It("scales down through the HPA to its new maximum, never below it", func(ctx SpecContext) {
		change(ctx, "HPA scale-down (4 to 2)", 2, 4, 2, func() {
			kubectlApply(ctx, fmt.Sprintf(rolloutManifest, 2, 2))
		}, replicas(ctx, 2))
	})

	It("drains a node with the PDB in force: never below minAvailable, never without an endpoint", func(ctx SpecContext) {
		nodes := kubectl(ctx, "get", "pods", "-n", rolloutNamespace, "-l", v1alpha1.GatewayNameLabel+"="+rolloutGateway,
			"-o", `jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}`)
		count := map[string]int{}
		busiest := ""
		for _, n := range strings.Fields(nodes) {
			count[n]++
			if busiest == "" || count[n] > count[busiest] {
				busiest = n
			}
		}
		Expect(busiest).NotTo(BeEmpty(), "gateway pods: %q", nodes)
		DeferCleanup(func(ctx SpecContext) { kubectl(ctx, "uncordon", busiest) })
		change(ctx, fmt.Sprintf("kubectl drain of the node with %d of the 2 gateway pods", count[busiest]), 1, 2, 2, func() {
			kubectl(ctx, "drain", busiest, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=150s")
		}, func(g Gomega) {
			g.Expect(kubectl(ctx, "get", "pods", "-n", rolloutNamespace, "-l", v1alpha1.GatewayNameLabel+"="+rolloutGateway,
				"--field-selector=spec.nodeName="+busiest, "-o", "name")).To(BeEmpty())
			replicas(ctx, 2)(g)
		})
	})

	It("replaces the Service to move it to another kind of load balancer when the Gateway opts in, keeping its address", func(ctx SpecContext) {
		const class = "e2e.example.com/second"
		Expect(env.StartLoadBalancerClass(class)).To(Succeed())
		before := &corev1.Service{}
		Expect(env.Admin().Get(ctx, types.NamespacedName{Namespace: rolloutNamespace, Name: rolloutService}, before)).To(Succeed())
		Expect(before.Status.LoadBalancer.Ingress).NotTo(BeEmpty())
		address := before.Status.LoadBalancer.Ingress[0].IP
		kubectl(ctx, "annotate", gatewayKind, "-n", rolloutNamespace, rolloutGateway, v1alpha1.ReplaceOnImmutableChangeAnnotation+"=true")
		Eventually(watch.Now).Should(Equal(2))
		addresses := watchServiceAddress(ctx, types.NamespacedName{Namespace: rolloutNamespace, Name: rolloutService})
		start := time.Now()
		kubectl(ctx, "patch", "configmap", "-n", rolloutNamespace, "edge-options", "--type=merge",
			"-p", `{"data":{"service":"spec:\n  loadBalancerClass: `+class+`\n"}}`)
		kubectl(ctx, "wait", "--for=condition=gateway.istio.io/AddressKept", gatewayKind, "-n", rolloutNamespace, rolloutGateway, "--timeout=120s")
		kubectl(ctx, "wait", "--for=condition=programmed", gatewayKind, "-n", rolloutNamespace, rolloutGateway, "--timeout=60s")
		Eventually(watch.Now, time.Minute).Should(Equal(2), "ready endpoints after the replacement")
		end := time.Now()
		after := &corev1.Service{}
		Expect(env.Admin().Get(ctx, types.NamespacedName{Namespace: rolloutNamespace, Name: rolloutService}, after)).To(Succeed())
		Expect(after.UID).NotTo(Equal(before.UID), "the Service was replaced")
		Expect(after.Spec.LoadBalancerClass).To(HaveValue(Equal(class)))
		Expect(after.Status.LoadBalancer.Ingress).To(ConsistOf(HaveField("IP", address)), "the address was kept")
		Expect(kubectl(ctx, "get", gatewayKind, "-n", rolloutNamespace, rolloutGateway, "-o", "jsonpath={.status.addresses[*].value}")).To(Equal(address))

		w := watch.Between(start, end)
		withoutAddress := addresses.Without(start, end)
		GinkgoWriter.Printf("Service replacement (load balancer class): address %s before, %s after; %s without an address, %s without any ready endpoint, %s in all:\n%s",
			address, after.Status.LoadBalancer.Ingress[0].IP, withoutAddress.Round(100*time.Millisecond), w.Below(1).Round(100*time.Millisecond),
			end.Sub(start).Round(100*time.Millisecond), w)
		AddReportEntry("Service replacement (load balancer class)", fmt.Sprintf("address %s before, %s after; without an address %s; without any ready endpoint %s; took %s",
			address, after.Status.LoadBalancer.Ingress[0].IP, withoutAddress.Round(100*time.Millisecond), w.Below(1).Round(100*time.Millisecond),
			end.Sub(start).Round(100*time.Millisecond)))
		// A new Service is new EndpointSlices and a new load balancer: the gap is the price of
		// the opt-in, and it must stay a matter of seconds.
		Expect(w.Below(1)).To(BeNumerically("<", 20*time.Second), "time without a ready endpoint:\n%s", w)
	})
})

// serviceAddressWatch records, by polling the Service every 50 ms, the moments it has no
// load-balancer address (absent, or not yet assigned).
type serviceAddressWatch struct {
	mu      sync.Mutex
	samples []addressSample
}

type addressSample struct {
	at      time.Time
	address string
}

// watchServiceAddress polls the Service's address until ctx ends.
func watchServiceAddress(ctx context.Context, name types.NamespacedName) *serviceAddressWatch {
	w := &serviceAddressWatch{}
	go func() {
		ticker := time.NewTicker(50 * time.Millisecond)
		defer ticker.Stop()
		for {
			svc := &corev1.Service{}
			address := ""
			if err := env.Admin().Get(ctx, name, svc); err == nil && len(svc.Status.LoadBalancer.Ingress) > 0 {
				address = svc.Status.LoadBalancer.Ingress[0].IP
			}
			w.mu.Lock()
			w.samples = append(w.samples, addressSample{at: time.Now(), address: address})
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	return w
}

// Without is how long, between from and to, the polls found no address (each poll
// standing for the time until the next).
func (w *serviceAddressWatch) Without(from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var total time.Duration
	for i, s := range w.samples {
		if s.address != "" || s.at.Before(from) || s.at.After(to) {
			continue
		}
		next := to
		if i+1 < len(w.samples) && w.samples[i+1].at.Before(to) {
			next = w.samples[i+1].at
		}
		total += next.Sub(s.at)
	}
	return total
}

// kubectlApply applies a manifest from standard input and fails the spec when kubectl does.
func kubectlApply(ctx context.Context, manifest string) {
	GinkgoHelper()
	_, stderr, err := env.Kubectl(ctx, manifest, "apply", "-f", "-")
	Expect(err).NotTo(HaveOccurred(), "kubectl apply: %s", stderr)
}
