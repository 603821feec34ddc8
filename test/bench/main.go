// Command bench is `make bench`: it runs the operator binary against a local control plane
// with N Gateways and measures convergence time, API requests per Gateway, writes in a
// steady state across a forced resync, the time a class-wide change takes, reconcile
// latency, and the operator's CPU and memory, for a curve of N. It prints a table and
// writes the same results as Markdown for BENCHMARKS.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
	"github.com/kubegate/istio-gateway-operator/test/apicounter"
	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

type config struct {
	sizes         []int
	namespaces    int
	paramFraction float64
	idle          time.Duration
	curveIdle     time.Duration
	unrelated     int
	clients       int
	manager       string
	out           string
	logDir        string
	policy        bool
	floorUnits    int
	probes        bool
	probeInterval time.Duration
	restart       bool
	managerArgs   string
}

// benchPolicy is a class policy that binds every Gateway-level ConfigMap of the workload:
// their HPA maximum of 4 is lowered to 3 and reported, their CPU request is allowed.
const benchPolicy = `gatewayMayOverride:
  horizontalPodAutoscaler: [spec.minReplicas, spec.maxReplicas]
  deployment: [spec.template.spec.containers.resources]
enforced:
  deployment: [spec.template.spec.nodeSelector]
maximums:
  horizontalPodAutoscaler: {spec.maxReplicas: 3}
  deployment: {spec.template.spec.containers.resources.requests.cpu: "1"}
`

func main() {
	ctrllog.SetLogger(logr.Discard())
	cfg := config{}
	var sizes string
	flag.StringVar(&sizes, "n", "100,300,1000", "Gateway counts to measure, smallest first; the last is the main run.")
	flag.IntVar(&cfg.namespaces, "namespaces", 50, "Namespaces the Gateways are spread over.")
	flag.Float64Var(&cfg.paramFraction, "param-fraction", 0.25, "Fraction of Gateways with a parametersRef ConfigMap.")
	flag.DurationVar(&cfg.idle, "idle", 2*time.Minute, "Steady-state window of the main run.")
	flag.DurationVar(&cfg.curveIdle, "curve-idle", 30*time.Second, "Steady-state window of the smaller runs.")
	flag.IntVar(&cfg.unrelated, "unrelated", 10000, "Unrelated ConfigMaps and as many Secrets created in the main run; 0 skips.")
	flag.IntVar(&cfg.clients, "clients", 16, "Parallel clients creating objects.")
	flag.StringVar(&cfg.manager, "manager", "bin/manager", "The operator binary.")
	flag.StringVar(&cfg.out, "out", "bin/bench/results.md", "Where to write the Markdown results.")
	flag.BoolVar(&cfg.policy, "policy", false, "Put a class policy in force that lowers every Gateway-level HPA maximum (benchPolicy).")
	flag.IntVar(&cfg.floorUnits, "floor-units", 600, "Gateways' worth of writes the benchmark's own clients send, before the operator starts, to measure the API server's raw write rate; 0 skips.")
	flag.BoolVar(&cfg.probes, "probes", false, "Fairness: during the main run's burst, create a probe Gateway in another namespace every -probe-interval and time each to Programmed.")
	flag.DurationVar(&cfg.probeInterval, "probe-interval", 2*time.Second, "Interval between probe Gateways (-probes).")
	flag.StringVar(&cfg.managerArgs, "manager-args", "", "More flags for the operator, space-separated (for example --max-concurrent-reconciles=16).")
	flag.BoolVar(&cfg.restart, "restart", false, "After the main run: restart the operator, then a failover from a killed leader to a standby; writes, time until every Gateway is checked, peak memory.")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fail(fmt.Errorf("bad -n %q", sizes))
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	// Ctrl-C stops the operator and the control plane of the run in progress.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		cleanup.run()
		os.Exit(130)
	}()
	cfg.logDir = filepath.Dir(cfg.out)
	if err := os.MkdirAll(cfg.logDir, 0o755); err != nil {
		fail(err)
	}
	var results []*result
	for i, n := range cfg.sizes {
		main := i == len(cfg.sizes)-1
		fmt.Printf("\n=== N=%d ===\n", n)
		res, err := run(cfg, n, main)
		cleanup.run()
		if err != nil {
			fail(fmt.Errorf("N=%d: %w", n, err))
		}
		results = append(results, res)
	}
	report := markdown(cfg, results)
	fmt.Println()
	fmt.Print(report)
	if err := os.WriteFile(cfg.out, []byte(report), 0o644); err != nil {
		fail(err)
	}
	fmt.Printf("\nWrote %s\n", cfg.out)
}

// benchProxyImage is the proxy image the benchmark's Gateways render with (no revision is
// installed on its control plane).
const benchProxyImage = "docker.io/istio/proxyv2:1.26.3"

// benchGateway is the workload's Gateway: two HTTP listeners, of class istio.
func benchGateway(namespace, name string) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: "istio",
			Listeners: []gatewayv1.Listener{
				{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType},
				{Name: "http-alt", Port: 8080, Protocol: gatewayv1.HTTPProtocolType},
			},
		},
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	cleanup.run()
	os.Exit(1)
}

// cleanups stop what a run started, in reverse order, also on Ctrl-C.
type cleanups struct {
	mu  sync.Mutex
	fns []func()
}

var cleanup cleanups

func (c *cleanups) add(fn func()) {
	c.mu.Lock()
	c.fns = append(c.fns, fn)
	c.mu.Unlock()
}

func (c *cleanups) run() {
	c.mu.Lock()
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

type result struct {
	n               int
	converge        time.Duration
	writesStop      time.Duration
	requests        map[string]float64
	idle            time.Duration
	idleObjectWrite float64
	idleLeaseWrites float64
	idleReconciles  float64
	classChange     time.Duration
	classWrites     float64
	p50, p99        time.Duration
	peakRSS         float64
	cpu             float64
	rssBefore       float64
	rssAfter        float64
	heapBefore      float64
	heapAfter       float64
	unrelated       int
	// rawRate is the API server's write rate with no operator running (writes/s).
	rawRate  float64
	probes   []time.Duration
	restart  *takeover
	failover *takeover
}

// floor is the time N Gateways' writes take at the raw write rate, and ratio the
// convergence time over it.
func (r *result) floor() time.Duration {
	if r.rawRate == 0 {
		return 0
	}
	return time.Duration(float64(writesPerGateway*r.n) / r.rawRate * float64(time.Second))
}

func (r *result) writesPerGateway() float64 {
	var total float64
	for k, v := range r.requests {
		if isWriteKey(k) {
			total += v
		}
	}
	return total / float64(r.gateways())
}

// gateways is how many Gateways the convergence's requests served: the burst's and the
// probes'.
func (r *result) gateways() int { return r.n + len(r.probes) }

func (r *result) requestsPerGateway() float64 {
	var total float64
	for k, v := range r.requests {
		if !strings.HasPrefix(k, "WATCH") {
			total += v
		}
	}
	return total / float64(r.gateways())
}

func isWriteKey(k string) bool {
	verb, _, _ := strings.Cut(k, " ")
	switch verb {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// run measures one N on a fresh control plane and a fresh operator process.
func run(cfg config, n int, isMain bool) (*result, error) {
	ctx := context.Background()
	namespaces := []string{v1alpha1.DefaultSystemNamespace}
	for i := 0; i < cfg.namespaces; i++ {
		namespaces = append(namespaces, fmt.Sprintf("bench-%02d", i))
	}
	cluster, err := localcluster.Start(ctx, localcluster.Options{Namespaces: namespaces})
	if err != nil {
		return nil, err
	}
	cleanup.add(func() { _ = cluster.Stop() })

	scheme := clientgoscheme.Scheme
	utilruntime.Must(gatewayv1.Install(scheme))
	restCfg := rest.CopyConfig(cluster.Config)
	restCfg.QPS, restCfg.Burst = -1, 0
	c, err := client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	// The class ConfigMap of the workload: ClusterIP Services, so Programmed needs no
	// load balancer, plus the default HPA and PDB.
	classCM := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ClassDefaultsConfigMapName("istio"), Namespace: v1alpha1.DefaultSystemNamespace,
			Labels: map[string]string{v1alpha1.DefaultsForClassLabel: "istio"}},
		Data: map[string]string{
			"service":                 "spec:\n  type: ClusterIP\n",
			"horizontalPodAutoscaler": "spec:\n  minReplicas: 2\n  maxReplicas: 5\n",
			"podDisruptionBudget":     "spec:\n  minAvailable: 1\n",
		},
	}
	if cfg.policy {
		classCM.Data[v1alpha1.DataKeyPolicy] = benchPolicy
	}
	if err := c.Create(ctx, classCM); err != nil {
		return nil, err
	}
	withParams := int(math.Round(float64(n) * cfg.paramFraction))
	if err := parallel(cfg.clients, withParams, func(i int) error {
		return c.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("gw-%04d-options", i), Namespace: namespaces[1+i%cfg.namespaces]},
			Data: map[string]string{
				"deployment":              "spec:\n  template:\n    spec:\n      containers:\n      - name: istio-proxy\n        resources:\n          requests: {cpu: 200m}\n",
				"horizontalPodAutoscaler": "spec:\n  maxReplicas: 4\n",
			},
		})
	}); err != nil {
		return nil, err
	}

	res := &result{n: n}
	if cfg.floorUnits > 0 {
		if res.rawRate, err = rawWriteRate(ctx, c, classCM, cfg.clients, cfg.floorUnits); err != nil {
			return nil, fmt.Errorf("measuring the raw write rate: %w", err)
		}
		fmt.Printf("raw write rate: %.0f writes/s (%d Gateways' writes from %d clients, no operator); floor for N=%d: %.1f s\n",
			res.rawRate, cfg.floorUnits, cfg.clients, n, res.floor().Seconds())
	}
	// The benchmark watches what it waits for, rather than listing it every 250 ms: at ten
	// thousand Gateways those lists alone would load the API server it measures.
	watched, err := watchedCache(ctx, restCfg, scheme)
	if err != nil {
		return nil, err
	}
	op, err := startOperator(cfg, cluster, fmt.Sprint(n), 0)
	if err != nil {
		return nil, err
	}
	cleanup.add(op.stop)
	if err := waitFor(2*time.Minute, func() (bool, error) {
		gc := &gatewayv1.GatewayClass{}
		if err := c.Get(ctx, client.ObjectKey{Name: "istio"}, gc); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return meta.IsStatusConditionTrue(gc.Status.Conditions, "Accepted"), nil
	}); err != nil {
		return nil, fmt.Errorf("waiting for the operator to accept the GatewayClass: %w", err)
	}
	before, err := op.scrape()
	if err != nil {
		return nil, err
	}
	cpuBefore, _, _, err := op.procStats()
	if err != nil {
		return nil, err
	}

	var probe *probes
	if cfg.probes && isMain {
		if probe, err = startProbes(ctx, c, cfg.probeInterval); err != nil {
			return nil, err
		}
	}
	fmt.Printf("creating %d Gateways (%d with a parametersRef) with %d clients\n", n, withParams, cfg.clients)
	start := time.Now()
	if err := parallel(cfg.clients, n, func(i int) error {
		gw := benchGateway(namespaces[1+i%cfg.namespaces], fmt.Sprintf("gw-%04d", i))
		if i < withParams {
			gw.Spec.Infrastructure = &gatewayv1.GatewayInfrastructure{ParametersRef: &gatewayv1.LocalParametersReference{Kind: "ConfigMap", Name: fmt.Sprintf("gw-%04d-options", i)}}
		}
		return c.Create(ctx, gw)
	}); err != nil {
		return nil, err
	}
	if err := waitFor(30*time.Minute, func() (bool, error) { return converged(ctx, watched, n) }); err != nil {
		return nil, fmt.Errorf("waiting for convergence: %w", err)
	}
	res.converge = time.Since(start)
	fmt.Printf("all %d Programmed with their resources after %s\n", n, res.converge.Round(100*time.Millisecond))
	if res.rawRate > 0 {
		fmt.Printf("%.2fx the raw write floor\n", res.converge.Seconds()/res.floor().Seconds())
	}
	if probe != nil {
		if res.probes, err = probe.finish(); err != nil {
			return nil, fmt.Errorf("probes: %w", err)
		}
		fmt.Printf("%d probes during the burst: p50 %s, p99 %s (all: %v)\n", len(res.probes), percentile(res.probes, 0.5).Round(10*time.Millisecond), percentile(res.probes, 0.99).Round(10*time.Millisecond), probe.inOrder())
	}
	lastWrite, err := op.waitForQuiet(5 * time.Second)
	if err != nil {
		return nil, err
	}
	res.writesStop = lastWrite.Sub(start)
	after, err := op.scrape()
	if err != nil {
		return nil, err
	}
	res.requests = apicounter.Delta(counters(after, "istio_gateway_operator_api_requests_total", "verb", "resource"),
		counters(before, "istio_gateway_operator_api_requests_total", "verb", "resource"))
	res.p50, res.p99 = reconcileQuantiles(before, after)
	cpuAfter, _, hwm, err := op.procStats()
	if err != nil {
		return nil, err
	}
	res.cpu, res.peakRSS = cpuAfter-cpuBefore, hwm
	if err := op.saveHeapProfile(filepath.Join(cfg.logDir, fmt.Sprintf("heap-%d.pprof", n))); err != nil {
		return nil, err
	}

	// Steady state across a forced full resync: a GatewayClass annotation change maps to
	// every Gateway of the class.
	res.idle = cfg.curveIdle
	if isMain {
		res.idle = cfg.idle
	}
	fmt.Printf("steady state for %s with a forced resync of every Gateway\n", res.idle)
	idleBefore, err := op.scrape()
	if err != nil {
		return nil, err
	}
	if err := touchClass(ctx, c); err != nil {
		return nil, err
	}
	time.Sleep(res.idle)
	idleAfter, err := op.scrape()
	if err != nil {
		return nil, err
	}
	for k, v := range apicounter.Delta(counters(idleAfter, "istio_gateway_operator_api_requests_total", "verb", "resource"),
		counters(idleBefore, "istio_gateway_operator_api_requests_total", "verb", "resource")) {
		switch {
		case !isWriteKey(k):
		case strings.HasSuffix(k, " leases"):
			res.idleLeaseWrites += v
		default:
			res.idleObjectWrite += v
		}
	}
	res.idleReconciles = sumCounter(idleAfter, "controller_runtime_reconcile_total", "controller", "gateway") -
		sumCounter(idleBefore, "controller_runtime_reconcile_total", "controller", "gateway")

	// A class-wide change: HPA maxReplicas 5 -> 7 must reach every HPA.
	classBefore, err := op.scrape()
	if err != nil {
		return nil, err
	}
	classCM.Data["horizontalPodAutoscaler"] = "spec:\n  minReplicas: 2\n  maxReplicas: 7\n"
	if err := c.Get(ctx, client.ObjectKeyFromObject(classCM), &corev1.ConfigMap{}); err != nil {
		return nil, err
	}
	start = time.Now()
	if err := updateData(ctx, c, classCM); err != nil {
		return nil, err
	}
	// Gateways with their own maxReplicas keep it: the Gateway level wins.
	want := n - withParams
	if err := waitFor(5*time.Minute, func() (bool, error) { return hpasAt(ctx, watched, 7, want) }); err != nil {
		return nil, fmt.Errorf("waiting for the class change: %w", err)
	}
	res.classChange = time.Since(start)
	if _, err := op.waitForQuiet(5 * time.Second); err != nil {
		return nil, err
	}
	classAfter, err := op.scrape()
	if err != nil {
		return nil, err
	}
	for k, v := range apicounter.Delta(counters(classAfter, "istio_gateway_operator_api_requests_total", "verb", "resource"),
		counters(classBefore, "istio_gateway_operator_api_requests_total", "verb", "resource")) {
		if isWriteKey(k) && !strings.HasSuffix(k, " leases") {
			res.classWrites += v
		}
	}
	fmt.Printf("class change reached %d HPAs after %s with %.0f writes\n", want, res.classChange.Round(100*time.Millisecond), res.classWrites)

	if isMain && cfg.unrelated > 0 {
		if err := unrelatedObjects(ctx, c, cfg, op, res); err != nil {
			return nil, err
		}
	}
	if isMain && cfg.restart {
		// Every Gateway the operator serves (the probes' too) is checked after a start.
		total := n + len(res.probes)
		next, restart, err := measureRestart(cfg, cluster, op, total)
		if err != nil {
			return nil, fmt.Errorf("restart: %w", err)
		}
		res.restart = &restart
		fmt.Printf("restart: %s\n", restart)
		failover, err := measureFailover(cfg, cluster, next, total)
		if err != nil {
			return nil, fmt.Errorf("failover: %w", err)
		}
		res.failover = &failover
		fmt.Printf("failover: %s\n", failover)
	}
	return res, nil
}

// unrelatedObjects measures the operator's memory before and after the cluster fills with
// ConfigMaps and Secrets that have nothing to do with Gateways.
func unrelatedObjects(ctx context.Context, c client.Client, cfg config, op *operator, res *result) error {
	var err error
	if res.rssBefore, res.heapBefore, err = op.liveMemory(filepath.Join(cfg.logDir, "heap-before-unrelated.pprof")); err != nil {
		return err
	}
	res.unrelated = cfg.unrelated
	const spread = 20
	for i := 0; i < spread; i++ {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%02d", i)}}); err != nil {
			return err
		}
	}
	payload := strings.Repeat("x", 512)
	fmt.Printf("creating %d unrelated ConfigMaps and %d Secrets\n", cfg.unrelated, cfg.unrelated)
	if err := parallel(cfg.clients, cfg.unrelated, func(i int) error {
		ns := fmt.Sprintf("unrelated-%02d", i%spread)
		if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%05d", i), Namespace: ns,
			Labels: map[string]string{"app": "unrelated"}}, Data: map[string]string{"config": payload}}); err != nil {
			return err
		}
		return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("secret-%05d", i), Namespace: ns},
			StringData: map[string]string{"token": payload}})
	}); err != nil {
		return err
	}
	// Let the watches deliver everything before measuring.
	time.Sleep(15 * time.Second)
	if res.rssAfter, res.heapAfter, err = op.liveMemory(filepath.Join(cfg.logDir, "heap-after-unrelated.pprof")); err != nil {
		return err
	}
	fmt.Printf("RSS %.1f MiB -> %.1f MiB; live heap %.1f MiB -> %.1f MiB\n", res.rssBefore, res.rssAfter, res.heapBefore, res.heapAfter)
	return nil
}

// liveMemory forces a GC in the operator (through its heap profile, which it saves) and
// returns its resident set and the Go heap in use right after, in MiB.
func (o *operator) liveMemory(profile string) (rss, heap float64, err error) {
	if err := o.saveHeapProfile(profile); err != nil {
		return 0, 0, err
	}
	metrics, err := o.scrape()
	if err != nil {
		return 0, 0, err
	}
	_, rss, _, err = o.procStats()
	return rss, gauge(metrics, "go_memstats_heap_inuse_bytes") / (1 << 20), err
}

// saveHeapProfile keeps the operator's live heap (after a GC) at convergence, for
// `go tool pprof -top bin/manager bin/bench/heap-<N>.pprof`.
func (o *operator) saveHeapProfile(path string) error {
	resp, err := http.Get("http://" + o.pprofAddr + "/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("reading the heap profile: %w", err)
	}
	defer resp.Body.Close()
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	_, err = io.Copy(out, resp.Body)
	return err
}

// operator is the operator binary running against the local control plane.
type operator struct {
	cmd        *exec.Cmd
	metricsURL string
	pprofAddr  string
	done       chan struct{}
}

// startOperator runs bin/manager with its log in manager-<name>.log; slot gives each of
// several operators at once their own ports.
func startOperator(cfg config, cluster *localcluster.Cluster, name string, slot int, extra ...string) (*operator, error) {
	kubeconfig := filepath.Join(cfg.logDir, "kubeconfig")
	if err := cluster.WriteKubeconfig(kubeconfig); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(cfg.logDir, "manager-"+name+".log"))
	if err != nil {
		return nil, err
	}
	port := 18380 + 10*slot
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", port)
	pprofAddr := fmt.Sprintf("127.0.0.1:%d", port+2)
	args := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--metrics-bind-address=" + metricsAddr,
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", port+1),
		"--pprof-bind-address=" + pprofAddr,
		"--enable-webhooks=false",
		"--status-mode=standalone",
		// No revision is installed here: the image the benchmark's proxies would run.
		"--proxy-image=" + benchProxyImage,
		"--zap-log-level=error",
	}, append(strings.Fields(cfg.managerArgs), extra...)...)
	cmd := exec.Command(cfg.manager, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cfg.manager, err)
	}
	op := &operator{cmd: cmd, metricsURL: "http://" + metricsAddr + "/metrics", pprofAddr: pprofAddr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(op.done); logFile.Close() }()
	if err := waitFor(time.Minute, func() (bool, error) {
		select {
		case <-op.done:
			return false, errors.New("the operator exited; see its log in " + cfg.logDir)
		default:
		}
		_, err := op.scrape()
		return err == nil, nil
	}); err != nil {
		op.stop()
		return nil, err
	}
	return op, nil
}

func (o *operator) stop() {
	select {
	case <-o.done:
		return
	default:
	}
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.done:
	case <-time.After(30 * time.Second):
		_ = o.cmd.Process.Kill()
		<-o.done
	}
}

func (o *operator) scrape() (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(o.metricsURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(bytes.NewReader(body))
}

// procStats reads the operator's CPU seconds, resident set and peak resident set (MiB).
func (o *operator) procStats() (cpuSeconds, rssMiB, hwmMiB float64, err error) {
	pid := o.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// Fields after the command name, which is in parentheses and may contain spaces.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	const clockTicks = 100
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, value, _ := strings.Cut(line, ":")
		kib, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
		switch key {
		case "VmRSS":
			rssMiB = kib / 1024
		case "VmHWM":
			hwmMiB = kib / 1024
		}
	}
	return (utime + stime) / clockTicks, rssMiB, hwmMiB, nil
}

// waitForQuiet returns when the operator's write counters have not moved for quiet, and
// the time they last moved.
func (o *operator) waitForQuiet(quiet time.Duration) (time.Time, error) {
	last := time.Now()
	var previous float64 = -1
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		m, err := o.scrape()
		if err != nil {
			return time.Time{}, err
		}
		writes := objectWrites(m)
		if writes != previous {
			previous, last = writes, time.Now()
		} else if time.Since(last) >= quiet {
			return last, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return time.Time{}, errors.New("the operator's writes did not stop within 5 minutes")
}

// watchedCache is an informer cache of the Gateways, the generated objects' metadata and
// the HPAs, started and synced.
func watchedCache(ctx context.Context, cfg *rest.Config, scheme *k8sruntime.Scheme) (client.Reader, error) {
	managed := labels.SelectorFromSet(labels.Set{v1alpha1.ManagedLabel: v1alpha1.ManagedLabelValue})
	byObject := map[client.Object]cache.ByObject{&autoscalingv2.HorizontalPodAutoscaler{}: {Label: managed}}
	kinds, err := controllers.GeneratedListKinds(scheme)
	if err != nil {
		return nil, err
	}
	for _, gvk := range kinds {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(schema.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: strings.TrimSuffix(gvk.Kind, "List")})
		byObject[meta] = cache.ByObject{Label: managed}
	}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, ByObject: byObject})
	if err != nil {
		return nil, err
	}
	// Informers made before the start are synced by it.
	objects := []client.Object{&gatewayv1.Gateway{}, &autoscalingv2.HorizontalPodAutoscaler{}}
	for obj := range byObject {
		if meta, ok := obj.(*metav1.PartialObjectMetadata); ok {
			objects = append(objects, meta)
		}
	}
	for _, obj := range objects {
		if _, err := c.GetInformer(ctx, obj); err != nil {
			return nil, err
		}
	}
	cacheCtx, cancel := context.WithCancel(ctx)
	cleanup.add(cancel)
	go func() { _ = c.Start(cacheCtx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, errors.New("the benchmark's cache did not sync")
	}
	return c, nil
}

// objectWrites are the operator's writes so far, Lease heartbeats and Events left out:
// the writes to objects and status.
func objectWrites(families map[string]*dto.MetricFamily) float64 {
	var writes float64
	for k, v := range counters(families, "istio_gateway_operator_api_requests_total", "verb", "resource") {
		if isWriteKey(k) && !strings.HasSuffix(k, " leases") && !strings.HasSuffix(k, " events") {
			writes += v
		}
	}
	return writes
}

func converged(ctx context.Context, c client.Reader, n int) (bool, error) {
	gateways := &gatewayv1.GatewayList{}
	if err := c.List(ctx, gateways); err != nil {
		return false, err
	}
	programmed := 0
	for _, gw := range gateways.Items {
		if isWorkload(gw.Namespace) && meta.IsStatusConditionTrue(gw.Status.Conditions, "Programmed") {
			programmed++
		}
	}
	if programmed < n {
		return false, nil
	}
	kinds, err := controllers.GeneratedListKinds(clientgoscheme.Scheme)
	if err != nil {
		return false, err
	}
	for _, gvk := range kinds {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk)
		if err := c.List(ctx, list, client.MatchingLabels{v1alpha1.ManagedLabel: v1alpha1.ManagedLabelValue}); err != nil {
			return false, err
		}
		workload := 0
		for _, item := range list.Items {
			if isWorkload(item.Namespace) {
				workload++
			}
		}
		if workload < n {
			return false, nil
		}
	}
	return true, nil
}

// isWorkload tells the burst's namespaces from the probes' and the write floor's.
func isWorkload(namespace string) bool {
	return strings.HasPrefix(namespace, "bench-") && namespace != floorNamespace
}

func hpasAt(ctx context.Context, c client.Reader, maxReplicas int32, want int) (bool, error) {
	list := &autoscalingv2.HorizontalPodAutoscalerList{}
	if err := c.List(ctx, list, client.MatchingLabels{v1alpha1.ManagedLabel: v1alpha1.ManagedLabelValue}); err != nil {
		return false, err
	}
	got := 0
	for _, h := range list.Items {
		if h.Spec.MaxReplicas == maxReplicas {
			got++
		}
	}
	return got >= want, nil
}

func touchClass(ctx context.Context, c client.Client) error {
	gc := &gatewayv1.GatewayClass{}
	if err := c.Get(ctx, client.ObjectKey{Name: "istio"}, gc); err != nil {
		return err
	}
	if gc.Annotations == nil {
		gc.Annotations = map[string]string{}
	}
	gc.Annotations["bench/resync"] = time.Now().Format(time.RFC3339Nano)
	return c.Update(ctx, gc)
}

func updateData(ctx context.Context, c client.Client, want *corev1.ConfigMap) error {
	live := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(want), live); err != nil {
		return err
	}
	live.Data = want.Data
	return c.Update(ctx, live)
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(workers, n int, fn func(i int) error) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return firstErr
}

func waitFor(timeout time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// counters flattens a counter family into "label1value label2value" keys.
func counters(families map[string]*dto.MetricFamily, name string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	f, ok := families[name]
	if !ok {
		return out
	}
	for _, m := range f.GetMetric() {
		values := make([]string, 0, len(labels))
		for _, want := range labels {
			for _, l := range m.GetLabel() {
				if l.GetName() == want {
					values = append(values, l.GetValue())
				}
			}
		}
		out[strings.Join(values, " ")] += m.GetCounter().GetValue()
	}
	return out
}

func sumCounter(families map[string]*dto.MetricFamily, name, label, value string) float64 {
	return counters(families, name, label)[value]
}

func gauge(families map[string]*dto.MetricFamily, name string) float64 {
	f, ok := families[name]
	if !ok || len(f.GetMetric()) == 0 {
		return 0
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

// reconcileQuantiles estimates p50 and p99 of the Gateway reconcile time between two
// scrapes from the histogram's buckets, interpolating inside the bucket.
func reconcileQuantiles(before, after map[string]*dto.MetricFamily) (time.Duration, time.Duration) {
	buckets := func(families map[string]*dto.MetricFamily) map[float64]float64 {
		out := map[float64]float64{}
		f, ok := families["controller_runtime_reconcile_time_seconds"]
		if !ok {
			return out
		}
		for _, m := range f.GetMetric() {
			gateway := false
			for _, l := range m.GetLabel() {
				gateway = gateway || (l.GetName() == "controller" && l.GetValue() == "gateway")
			}
			if !gateway {
				continue
			}
			for _, b := range m.GetHistogram().GetBucket() {
				out[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
		}
		return out
	}
	a, b := buckets(after), buckets(before)
	bounds := make([]float64, 0, len(a))
	for ub := range a {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0, 0
	}
	total := a[bounds[len(bounds)-1]] - b[bounds[len(bounds)-1]]
	quantile := func(q float64) time.Duration {
		rank := q * total
		lower, prevCount := 0.0, 0.0
		for _, ub := range bounds {
			count := a[ub] - b[ub]
			if count >= rank {
				if math.IsInf(ub, 1) {
					return time.Duration(lower * float64(time.Second))
				}
				frac := 0.0
				if count > prevCount {
					frac = (rank - prevCount) / (count - prevCount)
				}
				return time.Duration((lower + frac*(ub-lower)) * float64(time.Second))
			}
			lower, prevCount = ub, count
		}
		return 0
	}
	return quantile(0.5), quantile(0.99)
}

func markdown(cfg config, results []*result) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Machine: %s, %d cores, %s/%s, %s. Control plane: etcd %s + kube-apiserver %s from `make k8s-assets` on the same machine (no kube-controller-manager). Operator: `bin/manager`, 4 workers, webhooks off.\n\n",
		host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), "v3.7.3", localcluster.K8sVersion)
	fmt.Fprintf(&b, "Workload: N Gateways with 2 HTTP listeners (80, 8080) over %d namespaces, created by %d parallel clients; %.0f%% with a parametersRef ConfigMap; class ConfigMap with `service: {spec: {type: ClusterIP}}`, HPA 2/5, PDB 1%s. Five objects per Gateway (ServiceAccount, Deployment, Service, HPA, PDB).\n\n",
		cfg.namespaces, cfg.clients, cfg.paramFraction*100, policyNote(cfg.policy))
	b.WriteString("| N | all Programmed | raw write rate (floor) | ratio to the floor | Gateways/s | writes stop | writes/Gateway | requests/Gateway | steady-state object writes (window, reconciles) | class change (HPA max 5 -> 7) | its writes | reconcile p50 / p99 | peak RSS | CPU |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		floor, ratio := "not measured", "-"
		if r.rawRate > 0 {
			floor = fmt.Sprintf("%.0f/s (%.1f s)", r.rawRate, r.floor().Seconds())
			ratio = fmt.Sprintf("%.2fx", r.converge.Seconds()/r.floor().Seconds())
		}
		fmt.Fprintf(&b, "| %d | %.1f s | %s | %s | %.0f | %.1f s | %.2f | %.2f | %.0f (%s, %.0f) | %.1f s | %.0f | %s / %s | %.0f MiB | %.1f s |\n",
			r.n, r.converge.Seconds(), floor, ratio, float64(r.n)/r.converge.Seconds(), r.writesStop.Seconds(), r.writesPerGateway(), r.requestsPerGateway(),
			r.idleObjectWrite, r.idle, r.idleReconciles, r.classChange.Seconds(), r.classWrites,
			r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond), r.peakRSS, r.cpu)
	}
	main := results[len(results)-1]
	if main.rawRate > 0 {
		fmt.Fprintf(&b, "\nRaw write rate: the benchmark's %d clients sent %d Gateways' writes (the five apply bodies `manager render` prints and a status apply each) to the same API server before the operator started; the floor is %d writes per Gateway at that rate.\n",
			cfg.clients, cfg.floorUnits, writesPerGateway)
	}
	if len(main.probes) > 0 {
		fmt.Fprintf(&b, "\nFairness: %d probe Gateways, one every %s in namespace %s while the N=%d burst converged; creation to Programmed (polled every 100 ms): p50 %s, p99 %s, max %s.\n",
			len(main.probes), cfg.probeInterval, probeNamespace, main.n, percentile(main.probes, 0.5).Round(10*time.Millisecond),
			percentile(main.probes, 0.99).Round(10*time.Millisecond), main.probes[len(main.probes)-1].Round(10*time.Millisecond))
	}
	if main.restart != nil {
		fmt.Fprintf(&b, "\nRestart over N=%d converged Gateways: %s. Failover (two operators with leader election; the leader killed with SIGKILL, so the standby waits out the Lease): %s. \"Checked\" is the Gateway reconciler having run once per Gateway; writes exclude Leases and Events.\n",
			main.n, main.restart, main.failover)
	}
	fmt.Fprintf(&b, "\nRequests by verb and resource during the convergence of N=%d (client side, from `istio_gateway_operator_api_requests_total`):\n\n", main.n)
	b.WriteString("| request | count | per Gateway |\n|---|---|---|\n")
	keys := make([]string, 0, len(main.requests))
	for k := range main.requests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | %.0f | %.2f |\n", k, main.requests[k], main.requests[k]/float64(main.gateways()))
	}
	fmt.Fprintf(&b, "\nLease heartbeats in the steady-state window of N=%d: %.0f writes (the revision Lease, renewed every 20 s; not object writes).\n", main.n, main.idleLeaseWrites)
	if main.unrelated > 0 {
		fmt.Fprintf(&b, "\nMemory with %d unrelated ConfigMaps and %d unrelated Secrets added in 20 other namespaces (N=%d), each measured right after a forced GC: live Go heap %.1f MiB -> %.1f MiB (%+.1f%%); RSS %.1f MiB -> %.1f MiB (%+.1f%%).\n",
			main.unrelated, main.unrelated, main.n, main.heapBefore, main.heapAfter, 100*(main.heapAfter-main.heapBefore)/main.heapBefore,
			main.rssBefore, main.rssAfter, 100*(main.rssAfter-main.rssBefore)/main.rssBefore)
	}
	return b.String()
}

// policyNote describes the class policy in the workload line, when one is in force.
func policyNote(inForce bool) string {
	if !inForce {
		return ""
	}
	return "; a class policy in force (`-policy`: Gateway-level HPA maximum 4 lowered to 3 and reported, on every Gateway with a parametersRef)"
}
