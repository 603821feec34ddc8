//go:build istio

// The operator beside a real istiod: pilot-discovery built from the module proxy (`make
// istio-tools`), run out of cluster against the end-to-end environment with Istio's CRDs
// and the revision's ConfigMaps as istioctl renders them, in each setting the README's
// "Running next to istiod" documents. The API server's audit log says who wrote what;
// a watch of every Gateway API object records each condition's values. Run it with
// `make test-istio`.
package istio

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
	"github.com/kubegate/istio-gateway-operator/test/e2e/cluster"
	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

var observe = flag.Duration("observe", 2*time.Minute, "How long each scenario watches for writes after convergence.")

const (
	namespace   = "apps"
	istioClass  = "istio"
	controller  = "istio.io/gateway-controller"
	proxyImage  = localcluster.IstioProxyHub + "/proxyv2:" + localcluster.IstioProxyTag
	comparedGW  = "gw-a"
	quietPeriod = 15 * time.Second
)

var (
	operatorUser = "system:serviceaccount:" + v1alpha1.DefaultSystemNamespace + ":" + cluster.OperatorServiceAccount
	gateways     = []string{"gw-a", "gw-b", "gw-c"}
	root         string
	toolsDir     string
	// current is the running scenario's environment, for the diagnostics of a failure.
	current *environment
	// istiodRendered is the Deployment istiod's own deployment controller generated for
	// comparedGW, kept by the scenario that runs it for the one that compares.
	istiodRendered *appsv1.Deployment
)

// statusTargets are the status subresources of the Gateway API and of the generated kinds.
var statusTargets = []string{"gatewayclasses/status", "gateways/status", "httproutes/status",
	"deployments/status", "services/status", "horizontalpodautoscalers/status", "poddisruptionbudgets/status"}

// objectTargets are the kinds a gateway deployment controller generates.
var objectTargets = []string{"deployments", "services", "horizontalpodautoscalers", "poddisruptionbudgets", "serviceaccounts"}

// contestedTargets are everything the two writers could fight over: the Gateway API
// objects and their status, the generated objects and theirs, and Events. Left out are
// istiod's own bookkeeping (its leader-election ConfigMaps, renewed every few seconds, and
// the istio-ca-root-cert ConfigMap it puts in each namespace) and the operator's class
// defaults ConfigMap, written once.
var contestedTargets = append(append([]string{"gatewayclasses", "gateways", "httproutes", "events"}, statusTargets...), objectTargets...)

func TestIstio(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Beside istiod Suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(3 * time.Minute)
	SetDefaultEventuallyPollingInterval(time.Second)
	var err error
	root, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	toolsDir = filepath.Join(root, "bin", "istio")
	for _, f := range []string{"pilot-discovery", "istioctl", "crds.yaml"} {
		_, err := os.Stat(filepath.Join(toolsDir, f))
		Expect(err).NotTo(HaveOccurred(), "run `make istio-tools` first")
	}
})

// On a failure, the objects, events and Leases go to a file in the scenario's directory,
// beside the audit log and every process's log, while the environment still runs.
var _ = AfterEach(func() {
	if !CurrentSpecReport().Failed() || current == nil || current.Cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	diagnostics := current.Diagnostics(ctx)
	for _, args := range [][]string{{"get", "leases", "-A", "-o", "yaml"}, {"get", "gatewayclasses,httproutes", "-o", "yaml", "-A"}} {
		out, errOut, _ := current.Kubectl(ctx, "", args...)
		diagnostics += "$ kubectl " + strings.Join(args, " ") + "\n" + out + errOut
	}
	path := filepath.Join(current.Dir, "diagnostics.txt")
	_ = os.WriteFile(path, []byte(diagnostics), 0o644)
	AddReportEntry("diagnostics", path)
})

// environment is one scenario's running world.
type environment struct {
	*cluster.Cluster
	admin    client.WithWatch
	audit    string
	history  *conditionHistory
	started  time.Time
	quietAt  time.Time
	revision *revision
}

// scenario is one documented way of running istiod beside the operator.
type scenario struct {
	name string
	// pilotEnv is istiod's environment as a user sets it (values.pilot.env).
	pilotEnv map[string]string
	// operatorArgs are the operator's extra flags.
	operatorArgs []string
	// deploymentController: istiod's own gateway deployment controller runs, so the
	// operator starts only once it holds its Lease (the mistake the operator must survive).
	deploymentController bool
}

// setUp starts the environment, istiod and the operator, and creates three Gateways (one
// with a Gateway-level ConfigMap) and an HTTPRoute.
func setUp(ctx context.Context, s scenario) *environment {
	GinkgoHelper()
	dir := filepath.Join(root, "bin", "istio", "run", s.name)
	Expect(os.RemoveAll(dir)).To(Succeed())
	e := &environment{audit: filepath.Join(dir, "audit.log"), started: time.Now()}
	var err error
	e.Cluster, err = cluster.Start(ctx, cluster.Options{
		Root: root, Dir: dir, NoOperator: true,
		CRDPaths: []string{filepath.Join(toolsDir, "crds.yaml")},
		AuditLog: e.audit,
	})
	if e.Cluster != nil {
		DeferCleanup(func() { Expect(e.Stop()).To(Succeed()) })
	}
	Expect(err).NotTo(HaveOccurred())
	current = e
	scheme := newScheme()
	Expect(gatewayv1.Install(scheme)).To(Succeed())
	e.admin, err = client.NewWithWatch(e.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	watchCtx, cancel := context.WithCancel(context.Background())
	DeferCleanup(cancel)
	e.history, err = watchConditions(watchCtx, e.admin)
	Expect(err).NotTo(HaveOccurred())

	By("installing the revision as istioctl renders it, with istiod's settings " + fmt.Sprint(s.pilotEnv))
	e.revision, err = renderRevision(ctx, toolsDir, s.pilotEnv)
	Expect(err).NotTo(HaveOccurred())
	Expect(e.revision.install(ctx, e.admin)).To(Succeed())

	By("starting istiod")
	istiod, err := startIstiod(ctx, e.Cluster, toolsDir, e.revision)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { istiod.Stop(15 * time.Second) })
	if s.deploymentController {
		Eventually(func(g Gomega) {
			lease := &coordinationv1.Lease{}
			g.Expect(e.admin.Get(ctx, client.ObjectKey{Namespace: v1alpha1.DefaultSystemNamespace, Name: controllers.IstiodDeploymentLeaseName("")}, lease)).To(Succeed())
			g.Expect(ptr.Deref(lease.Spec.HolderIdentity, "")).NotTo(BeEmpty())
		}).Should(Succeed(), "istiod's deployment controller takes its Lease")
	}

	By("starting the operator with " + strings.Join(s.operatorArgs, " "))
	operator, err := e.StartOperator(ctx, s.operatorArgs...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { operator.Stop(15 * time.Second) })

	By("creating three Gateways and an HTTPRoute")
	Expect(e.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
	Expect(e.admin.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "backend", Namespace: namespace},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}, Selector: map[string]string{"app": "backend"}},
	})).To(Succeed())
	Expect(e.admin.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "gw-b-options", Namespace: namespace},
		Data: map[string]string{
			"horizontalPodAutoscaler": "spec:\n  minReplicas: 2\n  maxReplicas: 4\n",
			"deployment":              "metadata:\n  labels:\n    team: b\n",
		},
	})).To(Succeed())
	for _, name := range gateways {
		gw := &gatewayv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			Spec: gatewayv1.GatewaySpec{
				GatewayClassName: istioClass,
				Listeners: []gatewayv1.Listener{{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType,
					AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromSame)}}}},
			},
		}
		if name == "gw-b" {
			gw.Spec.Infrastructure = &gatewayv1.GatewayInfrastructure{
				ParametersRef: &gatewayv1.LocalParametersReference{Group: "", Kind: "ConfigMap", Name: "gw-b-options"},
			}
		}
		Expect(e.admin.Create(ctx, gw)).To(Succeed())
	}
	Expect(e.admin.Create(ctx, &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "route", Namespace: namespace},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gw-a"}}},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "backend", Port: ptr.To(gatewayv1.PortNumber(8080))}}}}}},
		},
	})).To(Succeed())
	return e
}

// settle waits until neither istiod nor the operator has written anything for quietPeriod,
// and marks that moment: every write after it is a write that should not have happened.
func (e *environment) settle() {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		now := time.Now()
		recent, err := countWrites(e.audit, now.Add(-quietPeriod), time.Time{}, operatorUser, istiodUser)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(recent.total(operatorUser, contestedTargets...)+recent.total(istiodUser, contestedTargets...)).To(BeZero(), "writes in the last %s:\n%s", quietPeriod, recent)
		e.quietAt = now
	}).Should(Succeed(), "the writers settle")
}

// staysQuiet watches for the observation window: no write by istiod or the operator, no
// condition changing value.
func (e *environment) staysQuiet() {
	GinkgoHelper()
	Consistently(func(g Gomega) {
		since, err := countWrites(e.audit, e.quietAt, time.Time{}, operatorUser, istiodUser)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(since.total(operatorUser, contestedTargets...)).To(BeZero(), "operator writes after convergence:\n%s", since)
		g.Expect(since.total(istiodUser, contestedTargets...)).To(BeZero(), "istiod writes after convergence:\n%s", since)
		g.Expect(e.history.changedSince(e.quietAt)).To(BeEmpty())
	}).WithTimeout(*observe).WithPolling(5 * time.Second).Should(Succeed())
}

// neverFlipped fails when any condition went back to a value it had left, at any time.
func (e *environment) neverFlipped() {
	GinkgoHelper()
	Expect(e.history.flips()).To(BeEmpty(), "a condition went back to a value it had left")
}

// writes are every write by the two writers since the environment started.
func (e *environment) writes() writeCounts {
	GinkgoHelper()
	counts, err := countWrites(e.audit, e.started, time.Time{}, operatorUser, istiodUser)
	Expect(err).NotTo(HaveOccurred())
	return counts
}

// report adds the writes per writer and target to the report, as the figures the README
// quotes.
func (e *environment) report(name string) {
	counts := e.writes()
	AddReportEntry(name+": writes per writer and target over the whole run", counts.String())
	_ = os.WriteFile(filepath.Join(e.Dir, "writes.txt"), []byte(counts.String()+"\n"), 0o644)
}

func (e *environment) gateway(g Gomega, ctx context.Context, name string) *gatewayv1.Gateway {
	gw := &gatewayv1.Gateway{}
	g.Expect(e.admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, gw)).To(Succeed())
	return gw
}

// eachGateway waits for every Gateway to pass check.
func (e *environment) eachGateway(ctx context.Context, check func(g Gomega, gw *gatewayv1.Gateway)) {
	GinkgoHelper()
	for _, name := range gateways {
		Eventually(func(g Gomega) {
			check(g, e.gateway(g, ctx, name))
		}).Should(Succeed(), name)
	}
}

func (e *environment) deployment(g Gomega, ctx context.Context, name string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	g.Expect(e.admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name + "-istio"}, d)).To(Succeed())
	return d
}

// conditionOf returns "Status/Reason" of a condition type, "" when absent.
func conditionOf(conditions []metav1.Condition, t string) string {
	c := meta.FindStatusCondition(conditions, t)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

// classAcceptedBy waits for class istio to be Accepted with a message that names the
// writer (istiod: "Handled by Istio controller"; the operator: "istio-gateway-operator").
func (e *environment) classAcceptedBy(ctx context.Context, message string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		class := &gatewayv1.GatewayClass{}
		g.Expect(e.admin.Get(ctx, client.ObjectKey{Name: istioClass}, class)).To(Succeed())
		c := meta.FindStatusCondition(class.Status.Conditions, string(gatewayv1.GatewayClassConditionStatusAccepted))
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Message).To(ContainSubstring(message))
	}).Should(Succeed())
}

// routeAccepted waits for the HTTPRoute to have gw-a's parent entry, by the istio
// controller name, Accepted and ResolvedRefs.
func (e *environment) routeAccepted(ctx context.Context) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		route := &gatewayv1.HTTPRoute{}
		g.Expect(e.admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "route"}, route)).To(Succeed())
		g.Expect(route.Status.Parents).To(HaveLen(1))
		p := route.Status.Parents[0]
		g.Expect(string(p.ControllerName)).To(Equal(controller))
		g.Expect(conditionOf(p.Conditions, "Accepted")).To(HavePrefix("True/"))
		g.Expect(conditionOf(p.Conditions, "ResolvedRefs")).To(HavePrefix("True/"))
	}).Should(Succeed())
}

// proxiesFromRevision checks that every gateway Deployment carries the revision's image
// and identity.
func (e *environment) proxiesFromRevision(ctx context.Context) {
	GinkgoHelper()
	for _, name := range gateways {
		d := e.deployment(Default, ctx, name)
		facts, err := proxyFacts(d)
		Expect(err).NotTo(HaveOccurred())
		Expect(facts).To(HaveKeyWithValue("image", proxyImage), name)
		Expect(facts).To(HaveKeyWithValue("env TRUST_DOMAIN", trustDomain), name)
		Expect(facts).To(HaveKeyWithValue("env ISTIO_META_MESH_ID", meshID), name)
		Expect(facts).To(HaveKeyWithValue("env ISTIO_META_CLUSTER_ID", clusterName), name)
		Expect(facts).To(HaveKeyWithValue("env ISTIO_META_NETWORK", network), name)
		Expect(facts).NotTo(HaveKey("label topology.istio.io/network"), "%s: as istiod's template, which labels pods only with a Gateway's own network", name)
	}
}

var _ = Describe("Beside istiod", Ordered, func() {
	Context("with istiod's own deployment controller left on (the mistake)", Ordered, func() {
		var e *environment
		BeforeAll(func(ctx SpecContext) {
			e = setUp(ctx, scenario{name: "deployment-controller-on", deploymentController: true})
		}, NodeTimeout(5*time.Minute))

		It("stands back: a condition naming the fix on every Gateway, one Event, no object written", func(ctx SpecContext) {
			e.classAcceptedBy(ctx, "Istio")
			e.eachGateway(ctx, func(g Gomega, gw *gatewayv1.Gateway) {
				g.Expect(conditionOf(gw.Status.Conditions, status.ConditionResourcesApplied)).To(Equal("False/" + status.ReasonIstiodDeploymentController))
				g.Expect(meta.FindStatusCondition(gw.Status.Conditions, status.ConditionResourcesApplied).Message).To(ContainSubstring("PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER=false"))
				g.Expect(conditionOf(gw.Status.Conditions, status.ConditionCustomizationsApplied)).To(Equal("False/" + status.ReasonIstiodDeploymentController))
				g.Expect(conditionOf(gw.Status.Conditions, "Programmed")).To(Equal("True/Programmed"), "istiod programs its own deployment")
				g.Expect(e.deployment(g, ctx, gw.Name).Labels).To(HaveKeyWithValue(v1alpha1.ManagedLabel, "istio.io-gateway-controller"))
			})
			e.routeAccepted(ctx)
			e.settle()
			e.staysQuiet()
			e.neverFlipped()

			writes := e.writes()
			for _, target := range append(objectTargets, "gatewayclasses/status", "httproutes/status") {
				Expect(writes.of(operatorUser, target)).To(BeZero(), "operator writes to %s:\n%s", target, writes)
			}
			Expect(writes.of(operatorUser, "gateways/status")).To(BeNumerically("<=", 2*len(gateways)), writes.String())
			var events eventsv1.EventList
			Expect(e.admin.List(ctx, &events)).To(Succeed())
			var told []eventsv1.Event
			for _, ev := range events.Items {
				if ev.Reason == status.ReasonIstiodDeploymentController {
					told = append(told, ev)
				}
			}
			Expect(told).To(HaveLen(1), "one Event for the whole episode, on istiod's Lease, none per Gateway")
			Expect(told[0].Regarding.Name).To(Equal(controllers.IstiodDeploymentLeaseName("")))
			Expect(told[0].Series).To(BeNil(), "and not repeated")
			e.report("deployment controller on")

			istiodRendered = e.deployment(Default, ctx, comparedGW)
		})
	})

	Context("with istiod's deployment controller off and the operator beside it (the documented setting)", Ordered, func() {
		var e *environment
		BeforeAll(func(ctx SpecContext) {
			e = setUp(ctx, scenario{name: "beside-istiod",
				pilotEnv: map[string]string{"PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER": "false"}})
		}, NodeTimeout(5*time.Minute))

		It("divides the labour: istiod writes the specification's status, the operator its own conditions and the objects, and both go quiet", func(ctx SpecContext) {
			e.classAcceptedBy(ctx, "Istio")
			e.eachGateway(ctx, func(g Gomega, gw *gatewayv1.Gateway) {
				g.Expect(conditionOf(gw.Status.Conditions, "Accepted")).To(Equal("True/Accepted"))
				g.Expect(conditionOf(gw.Status.Conditions, "Programmed")).To(Equal("True/Programmed"))
				g.Expect(conditionOf(gw.Status.Conditions, status.ConditionResourcesApplied)).To(Equal("True/" + status.ReasonApplied))
				g.Expect(conditionOf(gw.Status.Conditions, status.ConditionCustomizationsApplied)).To(Equal("True/" + status.ReasonApplied))
				g.Expect(gw.Status.Addresses).To(HaveLen(1))
				g.Expect(gw.Status.Listeners).To(HaveLen(1))
				g.Expect(conditionOf(gw.Status.Listeners[0].Conditions, "Programmed")).To(HavePrefix("True/"))
				g.Expect(e.deployment(g, ctx, gw.Name).Labels).To(HaveKeyWithValue(v1alpha1.ManagedLabel, v1alpha1.ManagedLabelValue))
			})
			e.routeAccepted(ctx)
			e.settle()
			e.staysQuiet()
			e.neverFlipped()

			writes := e.writes()
			Expect(writes.of(operatorUser, "gatewayclasses/status")).To(BeZero(), writes.String())
			Expect(writes.of(operatorUser, "httproutes/status")).To(BeZero(), writes.String())
			for _, target := range objectTargets {
				Expect(writes.of(istiodUser, target)).To(BeZero(), "istiod writes to %s:\n%s", target, writes)
			}
			Expect(writes.of(istiodUser, "httproutes/status")).To(BeNumerically(">=", 1), "istiod writes the route status")
			for _, writer := range []string{operatorUser, istiodUser} {
				Expect(writes.of(writer, "gateways/status")).To(BeNumerically("<=", 4*len(gateways)), writes.String())
			}
			e.report("beside istiod")
		})

		It("renders the proxies from the revision's configuration", func(ctx SpecContext) {
			e.proxiesFromRevision(ctx)
		})

		It("renders the Deployment istiod's own controller renders, but for the differences the README lists", func(ctx SpecContext) {
			Expect(istiodRendered).NotTo(BeNil(), "the scenario with istiod's deployment controller on captures its Deployment")
			want, err := proxyFacts(istiodRendered)
			Expect(err).NotTo(HaveOccurred())
			got, err := proxyFacts(e.deployment(Default, ctx, comparedGW))
			Expect(err).NotTo(HaveOccurred())
			var unexplained []string
			for _, d := range diffFacts(want, got) {
				if _, ok := knownDifferences[d.key]; !ok {
					unexplained = append(unexplained, d.String())
				}
			}
			_ = os.WriteFile(filepath.Join(e.Dir, "deployment-differences.txt"), []byte(fmt.Sprintln(diffFacts(want, got))), 0o644)
			Expect(unexplained).To(BeEmpty(), "differences from istiod's rendering that the README does not list")
		})
	})

	Context("with istiod's Gateway API status off and the operator standalone", Ordered, func() {
		var e *environment
		BeforeAll(func(ctx SpecContext) {
			e = setUp(ctx, scenario{name: "standalone",
				pilotEnv: map[string]string{
					"PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER": "false",
					"PILOT_ENABLE_GATEWAY_API_STATUS":                "false",
				},
				operatorArgs: cluster.StandaloneArgs})
		}, NodeTimeout(5*time.Minute))

		It("has the operator write all of the status, routes' included, and istiod none", func(ctx SpecContext) {
			e.classAcceptedBy(ctx, "istio-gateway-operator")
			e.eachGateway(ctx, func(g Gomega, gw *gatewayv1.Gateway) {
				g.Expect(conditionOf(gw.Status.Conditions, "Accepted")).To(Equal("True/Accepted"))
				g.Expect(conditionOf(gw.Status.Conditions, "Programmed")).To(Equal("True/Programmed"))
				g.Expect(conditionOf(gw.Status.Conditions, status.ConditionResourcesApplied)).To(Equal("True/" + status.ReasonApplied))
				g.Expect(gw.Status.Addresses).To(HaveLen(1))
			})
			e.routeAccepted(ctx)
			e.settle()
			e.staysQuiet()
			e.neverFlipped()

			writes := e.writes()
			for _, target := range append(objectTargets, statusTargets...) {
				Expect(writes.of(istiodUser, target)).To(BeZero(), "istiod writes to %s:\n%s", target, writes)
			}
			Expect(writes.of(operatorUser, "httproutes/status")).To(BeNumerically(">=", 1), writes.String())
			Expect(writes.of(operatorUser, "gateways/status")).To(BeNumerically("<=", 4*len(gateways)), writes.String())
			e.proxiesFromRevision(ctx)
			e.report("standalone")
		})
	})
})

var _ = Describe("Misconfigured beside istiod", Ordered, func() {
	Context("with istiod's Gateway API status on and the operator standalone (both write the same status)", Ordered, func() {
		var e *environment
		BeforeAll(func(ctx SpecContext) {
			e = setUp(ctx, scenario{name: "status-contended",
				pilotEnv:     map[string]string{"PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER": "false"},
				operatorArgs: []string{"--status-mode=standalone"}})
		}, NodeTimeout(5*time.Minute))

		It("ends the write war within a bounded number of writes, says so, and stays quiet", func(ctx SpecContext) {
			e.eachGateway(ctx, func(g Gomega, gw *gatewayv1.Gateway) {
				g.Expect(conditionOf(gw.Status.Conditions, "Programmed")).To(Equal("True/Programmed"))
				g.Expect(conditionOf(gw.Status.Conditions, status.ConditionResourcesApplied)).To(
					Or(Equal("True/"+status.ReasonApplied), Equal("False/"+status.ReasonContended)))
			})
			e.settle()
			e.staysQuiet()

			writes := e.writes()
			// Before the guard stops it: its first write, three answers to the other
			// writer, and the Contended condition.
			Expect(writes.of(operatorUser, "gatewayclasses/status")).To(BeNumerically("<=", contentionLimit+1), writes.String())
			// Per Gateway, the writes the API server took: the first report, up to three that
			// the Gateway's own progress takes (the Service's address, the objects applied,
			// the route attaching), three answers to the other writer, and the Contended
			// conditions. (A write war is thousands a minute.)
			// A write refused by its resourceVersion precondition (istiod wrote first) is
			// retried on what the Gateway then is: bounded by the answers it overtook.
			perGateway, err := writesPerObject(e.audit, e.started, operatorUser, "gateways/status")
			Expect(err).NotTo(HaveOccurred())
			for _, name := range gateways {
				Expect(perGateway[name].Taken).To(BeNumerically("<=", 1+3+contentionLimit+1), "status writes of Gateway %s taken: %v", name, perGateway)
				Expect(perGateway[name].Refused).To(BeNumerically("<=", contentionLimit+1), "status writes of Gateway %s refused: %v", name, perGateway)
			}
			AddReportEntry("status contended: operator status writes per Gateway", perGateway)
			e.report("status contended")
			var contended []string
			for _, name := range gateways {
				gw := e.gateway(Default, ctx, name)
				if c := meta.FindStatusCondition(gw.Status.Conditions, status.ConditionResourcesApplied); c != nil && c.Reason == status.ReasonContended {
					Expect(c.Message).To(ContainSubstring("PILOT_ENABLE_GATEWAY_API_STATUS=false"))
					contended = append(contended, name)
				}
			}
			AddReportEntry("status contended: Gateways that report Contended", contended)
		})
	})
})

// contentionLimit is pkg/contention's default: re-writes within its window before the guard
// stops the operator.
const contentionLimit = 3

// knownDifferences are the entries of a gateway Deployment where the operator's rendering
// differs from istiod's on purpose, each with the reason the README gives.
var knownDifferences = map[string]string{
	"label " + v1alpha1.ManagedLabel:            "each controller marks what it generates with its own value (pods and Deployment)",
	"deployment label " + v1alpha1.ManagedLabel: "each controller marks what it generates with its own value (pods and Deployment)",
	"pod securityContext":                       "the operator adds seccompProfile RuntimeDefault, so that gateway pods pass the restricted Pod Security Standard",
	"deployment strategy":                       "the operator renders maxUnavailable 0 with a 25% surge, so that a rollout never takes a serving pod out before its replacement is Ready",
}
