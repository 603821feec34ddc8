// Package cluster starts the end-to-end environment shared by the e2e suite and `make demo`:
// a local control plane with its controllers (kube-controller-manager, kube-scheduler),
// simulated nodes and pods (kwok), load-balancer addresses (MetalLB's controller), the
// operator's own manifests from its Helm chart, and the shipped bin/manager running as a
// separate process under its ServiceAccount, bound only to the RBAC the chart grants.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

// OperatorServiceAccount is the identity config/default gives the operator (its namePrefix
// applied to config/rbac's ServiceAccount); the manager process runs with its token.
const OperatorServiceAccount = "istio-gateway-operator-controller-manager"

// WebhookHost is the name the API server calls the operator's webhooks by here, and the
// one its self-issued certificate names.
const WebhookHost = "localhost"

// AddressPool is the range MetalLB hands load-balancer addresses from (TEST-NET-3, which
// is never routed).
const AddressPool = "203.0.113.10-203.0.113.50"

// Options say where the binaries are and how many nodes to simulate.
type Options struct {
	// Root is the operator's module root; defaults to the one holding the working directory.
	Root string
	// Dir receives the logs and kubeconfigs; defaults to bin/e2e/run under Root.
	Dir string
	// Nodes is the number of kwok nodes (default 2).
	Nodes int
	// ManagerArgs are extra flags for bin/manager.
	ManagerArgs []string
	// NoOperator leaves bin/manager unstarted (its RBAC and webhook configuration are still
	// installed), for a suite that starts it itself with StartOperator, beside other
	// controllers.
	NoOperator bool
	// CRDPaths are more CRD files or directories to install (Istio's own, say).
	CRDPaths []string
	// AuditLog asks the API server to log every write (localcluster.AuditPolicy) there.
	AuditLog string
}

// StandaloneArgs put the operator in charge of all of the status, HTTPRoutes' included, as
// it must be where no istiod runs (this environment, by default).
var StandaloneArgs = []string{"--status-mode=standalone", "--route-status"}

// Cluster is a running end-to-end environment.
type Cluster struct {
	*localcluster.Cluster
	// Dir holds the logs and kubeconfigs below.
	Dir string
	// AdminKubeconfig is a system:masters kubeconfig for kubectl: the test's and the
	// demo's identity, never the operator's.
	AdminKubeconfig string
	// OperatorKubeconfig carries the operator ServiceAccount's token.
	OperatorKubeconfig string
	// ManagerLog and ControlPlaneLog are the processes' outputs.
	ManagerLog      string
	ControlPlaneLog string
	// KubectlBinary is the kubectl built by `make k8s-assets`, which the suite and the
	// demo drive as a user would.
	KubectlBinary string

	admin      client.Client
	paths      paths
	healthAddr string
	logs       []*os.File
}

type paths struct {
	root, assets, e2eBin, manager, helm string
}

func resolvePaths(root string) (paths, error) {
	if root == "" {
		var err error
		if root, err = localcluster.ModuleRoot(); err != nil {
			return paths{}, err
		}
	}
	p := paths{
		root:    root,
		assets:  filepath.Join(root, "bin", "k8s", localcluster.K8sVersion),
		e2eBin:  filepath.Join(root, "bin", "e2e"),
		manager: filepath.Join(root, "bin", "manager"),
		helm:    filepath.Join(root, "bin", "helm", "helm"),
	}
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		p.assets = dir
	}
	for _, need := range []struct{ file, make string }{
		{filepath.Join(p.assets, "kubectl"), "make k8s-assets"},
		{filepath.Join(p.e2eBin, "kwok"), "make e2e-tools"},
		{filepath.Join(p.e2eBin, "metallb-controller"), "make e2e-tools"},
		{p.manager, "make build"},
		{p.helm, "make helm"},
	} {
		if _, err := os.Stat(need.file); err != nil {
			return paths{}, fmt.Errorf("%s is missing: run `%s` first", need.file, need.make)
		}
	}
	return p, nil
}

// Start brings the whole environment up and returns once the nodes are Ready, MetalLB has
// its address pool and the operator answers /readyz (webhook server included).
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	p, err := resolvePaths(opts.Root)
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(p.root, "bin", "e2e", "run")
	}
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", opts.Dir, err)
	}
	c := &Cluster{
		Dir:                opts.Dir,
		AdminKubeconfig:    filepath.Join(opts.Dir, "kubeconfig"),
		OperatorKubeconfig: filepath.Join(opts.Dir, "operator.kubeconfig"),
		ManagerLog:         filepath.Join(opts.Dir, "manager.log"),
		ControlPlaneLog:    filepath.Join(opts.Dir, "control-plane.log"),
		KubectlBinary:      filepath.Join(p.assets, "kubectl"),
		paths:              p,
	}
	// A fresh log per environment: StartOperator appends, one start after another.
	if err := os.Remove(c.ManagerLog); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing the previous %s: %w", c.ManagerLog, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
		}
	}()

	// The operator's own manifests, as `helm install` of the chart would install them
	// (test/chart holds them equal to config/default's).
	manifests, err := c.renderManifests(ctx, filepath.Join(p.root, "charts", "istio-gateway-operator"))
	if err != nil {
		return c, err
	}
	webhookFile := filepath.Join(opts.Dir, "webhooks.yaml")
	if err := writeObjects(webhookFile, manifests.webhooks); err != nil {
		return c, err
	}

	cpLog, err := c.openLog(c.ControlPlaneLog)
	if err != nil {
		return c, err
	}
	c.Cluster, err = localcluster.Start(ctx, localcluster.Options{
		AssetsDir:         p.assets,
		CRDDirectoryPaths: append([]string{filepath.Join(p.e2eBin, "metallb-crds")}, opts.CRDPaths...),
		Namespaces:        []string{v1alpha1.DefaultSystemNamespace, "metallb-system"},
		ControllerManager: true,
		Scheduler:         true,
		WebhookManifests:  []string{webhookFile},
		// The operator's own certificate names the host the API server dials.
		WebhookHost: WebhookHost,
		Output:      cpLog,
		AuditLog:    opts.AuditLog,
	})
	if err != nil {
		return c, err
	}
	if err := c.WriteKubeconfig(c.AdminKubeconfig); err != nil {
		return c, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return c, err
	}
	if err := gatewayv1.Install(scheme); err != nil {
		return c, err
	}
	if c.admin, err = client.New(c.Config, client.Options{Scheme: scheme}); err != nil {
		return c, fmt.Errorf("creating the admin client: %w", err)
	}
	if err := c.createAll(ctx, manifests.installed); err != nil {
		return c, err
	}
	// The default revision, as Istio's chart installs it: the operator renders the proxies
	// from its mesh config and injector values.
	if err := localcluster.InstallIstioRevision(ctx, c.admin, v1alpha1.DefaultSystemNamespace, ""); err != nil {
		return c, err
	}
	if err := c.startNodes(ctx, p, opts.Nodes); err != nil {
		return c, err
	}
	if err := c.startMetalLB(ctx, p); err != nil {
		return c, err
	}
	if err := c.writeOperatorKubeconfig(ctx); err != nil {
		return c, err
	}
	if opts.NoOperator {
		return c, nil
	}
	if _, err := c.StartOperator(ctx, append(slices.Clone(StandaloneArgs), opts.ManagerArgs...)...); err != nil {
		return c, err
	}
	// The operator creates its GatewayClass at start; users begin once it is accepted.
	err = c.poll(ctx, 60*time.Second, "GatewayClass istio Accepted", func() (bool, error) {
		class := &gatewayv1.GatewayClass{}
		if err := c.admin.Get(ctx, client.ObjectKey{Name: "istio"}, class); err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(class.Status.Conditions, string(gatewayv1.GatewayClassConditionStatusAccepted)), nil
	})
	return c, err
}

type operatorManifests struct {
	webhooks, installed []*unstructured.Unstructured
}

// renderManifests renders the Helm chart with its default values and keeps what a
// process outside the cluster needs: the RBAC (ServiceAccount, Roles, bindings), the
// webhook configuration and the Secret the operator keeps its webhook certificate in. The
// in-cluster Deployment, its Service and PDB are left out: here the binary runs beside the
// control plane, and issues its webhook certificate itself, as in a cluster.
func (c *Cluster) renderManifests(ctx context.Context, chart string) (operatorManifests, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.paths.helm, "template", "istio-gateway-operator", chart, "--namespace", v1alpha1.DefaultSystemNamespace)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return operatorManifests{}, fmt.Errorf("helm template %s: %w: %s", chart, err, stderr.String())
	}
	objects, err := decodeAll(stdout.Bytes())
	if err != nil {
		return operatorManifests{}, fmt.Errorf("reading helm template output of %s: %w", chart, err)
	}
	var m operatorManifests
	for _, o := range objects {
		switch o.GetKind() {
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
			m.webhooks = append(m.webhooks, o)
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Secret":
			m.installed = append(m.installed, o)
		}
	}
	if len(m.webhooks) == 0 || len(m.installed) == 0 {
		return m, fmt.Errorf("%s renders %d webhook configurations and %d RBAC objects and Secrets; expected both", chart, len(m.webhooks), len(m.installed))
	}
	return m, nil
}

func decodeAll(data []byte) ([]*unstructured.Unstructured, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		o := &unstructured.Unstructured{}
		if err := decoder.Decode(&o.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(o.Object) > 0 {
			out = append(out, o)
		}
	}
}

func writeObjects(path string, objects []*unstructured.Unstructured) error {
	var buf bytes.Buffer
	for _, o := range objects {
		data, err := o.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		buf.WriteString("---\n")
		buf.Write(data)
		buf.WriteString("\n")
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func (c *Cluster) createAll(ctx context.Context, objects []*unstructured.Unstructured) error {
	for _, o := range objects {
		if err := c.admin.Create(ctx, o.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}

// startNodes runs kwok with the node and pod stages that ship in its module and registers
// the fake nodes, which kwok marks Ready and keeps alive with Leases.
func (c *Cluster) startNodes(ctx context.Context, p paths, nodes int) error {
	kwokLog, err := c.openLog(filepath.Join(c.Dir, "kwok.log"))
	if err != nil {
		return err
	}
	if err := c.StartProcess(filepath.Join(p.e2eBin, "kwok"), kwokLog,
		"--kubeconfig="+c.KubeconfigPath(),
		"--config="+filepath.Join(p.e2eBin, "kwok-stages.yaml"),
		"--manage-all-nodes=true",
		"--node-lease-duration-seconds=40",
		"--cidr=10.244.0.0/16",
	); err != nil {
		return err
	}
	for i := range nodes {
		name := fmt.Sprintf("kwok-node-%d", i)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
		}}
		if err := c.admin.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating node %s: %w", name, err)
		}
	}
	return c.poll(ctx, 60*time.Second, "kwok nodes Ready", func() (bool, error) {
		var list corev1.NodeList
		if err := c.admin.List(ctx, &list); err != nil {
			return false, err
		}
		ready := 0
		for _, n := range list.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= nodes, nil
	})
}

// startMetalLB runs MetalLB's controller (address assignment only; there is no network to
// announce on) with one pool, for Services without a spec.loadBalancerClass.
func (c *Cluster) startMetalLB(ctx context.Context, p paths) error {
	if err := c.startMetalLBController(p, "", "metallb.log"); err != nil {
		return err
	}
	pool := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metallb.io/v1beta1",
		"kind":       "IPAddressPool",
		"metadata":   map[string]any{"name": "e2e", "namespace": "metallb-system"},
		"spec":       map[string]any{"addresses": []any{AddressPool}},
	}}
	return c.createAll(ctx, []*unstructured.Unstructured{pool})
}

// StartLoadBalancerClass runs a second MetalLB controller that serves only Services of
// spec.loadBalancerClass class, from the same pool: a second kind of load balancer in one
// cluster, which a Service can only move to by being replaced. It runs until the cluster
// stops.
func (c *Cluster) StartLoadBalancerClass(class string) error {
	return c.startMetalLBController(c.paths, class, "metallb-"+strings.NewReplacer("/", "-", ".", "-").Replace(class)+".log")
}

func (c *Cluster) startMetalLBController(p paths, class, logName string) error {
	lbLog, err := c.openLog(filepath.Join(c.Dir, logName))
	if err != nil {
		return err
	}
	metricsPort, err := FreePort()
	if err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + c.KubeconfigPath(),
		"--namespace=metallb-system",
		"--webhook-mode=disabled",
		"--disable-cert-rotation",
		fmt.Sprintf("--port=%d", metricsPort),
	}
	if class != "" {
		args = append(args, "--lb-class="+class)
	}
	return c.StartProcess(filepath.Join(p.e2eBin, "metallb-controller"), lbLog, args...)
}

// writeOperatorKubeconfig asks the API server for a token of the operator's ServiceAccount
// (TokenRequest, as the kubelet does for a pod) and writes a kubeconfig with nothing else.
func (c *Cluster) writeOperatorKubeconfig(ctx context.Context) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: OperatorServiceAccount, Namespace: v1alpha1.DefaultSystemNamespace}}
	request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)}}
	if err := c.admin.SubResource("token").Create(ctx, sa, request); err != nil {
		return fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: c.Config.CAData}
	cfg.AuthInfos["operator"] = &clientcmdapi.AuthInfo{Token: request.Status.Token}
	cfg.Contexts["operator"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "operator"}
	cfg.CurrentContext = "operator"
	if err := clientcmd.WriteToFile(*cfg, c.OperatorKubeconfig); err != nil {
		return fmt.Errorf("writing %s: %w", c.OperatorKubeconfig, err)
	}
	return nil
}

// StartOperator runs the shipped binary with leader election on, under the ServiceAccount's
// token, with the given flags added (a status mode, say), and waits for /readyz, which
// includes the webhook server. Each start appends to ManagerLog.
func (c *Cluster) StartOperator(ctx context.Context, extra ...string) (*localcluster.Process, error) {
	managerLog, err := os.OpenFile(c.ManagerLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", c.ManagerLog, err)
	}
	c.logs = append(c.logs, managerLog)
	healthPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	c.healthAddr = fmt.Sprintf("127.0.0.1:%d", healthPort)
	_, webhookPort, _ := c.WebhookServing()
	args := append([]string{
		"--kubeconfig=" + c.OperatorKubeconfig,
		"--system-namespace=" + v1alpha1.DefaultSystemNamespace,
		"--leader-elect",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + c.healthAddr,
		fmt.Sprintf("--webhook-port=%d", webhookPort),
		// The operator's own certificate, as config/default has it, for the name the
		// webhook configurations call here instead of the in-cluster Service's.
		"--webhook-certs=self",
		"--webhook-dns-names=" + WebhookHost,
		"--webhook-cert-dir=" + filepath.Join(c.Dir, "webhook-certs"),
	}, extra...)
	// KUBECONFIG cleared: the operator must not find the admin identity anywhere.
	process, err := c.Launch(c.paths.manager, []string{"KUBECONFIG="}, managerLog, args...)
	if err != nil {
		return nil, err
	}
	probe := &http.Client{Timeout: 2 * time.Second}
	return process, c.poll(ctx, 60*time.Second, "the operator's /readyz", func() (bool, error) {
		resp, err := probe.Get("http://" + c.healthAddr + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

func (c *Cluster) poll(ctx context.Context, timeout time.Duration, what string, done func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := done()
		if ok {
			return nil
		}
		lastErr = err
		if c.Cluster != nil {
			select {
			case failure := <-c.Failed():
				return fmt.Errorf("waiting for %s: %w", what, failure)
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: not ready after %s (last error: %v); logs in %s", what, timeout, lastErr, c.Dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *Cluster) openLog(path string) (*os.File, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	c.logs = append(c.logs, f)
	return f, nil
}

// FreePort is a TCP port on 127.0.0.1 that nothing listens on, for one more local process.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Admin is a client with the cluster admin's identity, for what a test sets up around the
// user's steps (an installed revision's ConfigMaps, say).
func (c *Cluster) Admin() client.Client { return c.admin }

// Kubectl runs kubectl as the admin and returns its standard output and error.
func (c *Cluster) Kubectl(ctx context.Context, stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, c.KubectlBinary, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.AdminKubeconfig)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// Diagnostics gathers what a failed run needs: the objects the walkthrough touches, recent
// events, and the end of the operator's log.
func (c *Cluster) Diagnostics(ctx context.Context) string {
	var b strings.Builder
	for _, args := range [][]string{
		{"get", "nodes,gatewayclasses,gateways,httproutes,deployments,replicasets,pods,services,hpa,pdb,configmaps", "-A", "-o", "wide"},
		{"get", "gateways", "-A", "-o", "yaml"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
	} {
		fmt.Fprintf(&b, "$ kubectl %s\n", strings.Join(args, " "))
		out, errOut, err := c.Kubectl(ctx, "", args...)
		b.WriteString(out)
		b.WriteString(errOut)
		if err != nil {
			fmt.Fprintf(&b, "(%v)\n", err)
		}
	}
	for _, log := range []string{c.ManagerLog, filepath.Join(c.Dir, "metallb.log"), filepath.Join(c.Dir, "kwok.log")} {
		fmt.Fprintf(&b, "--- last 150 lines of %s\n%s\n", log, tail(log, 150))
	}
	return b.String()
}

func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Stop ends the operator, MetalLB, kwok and the control plane, in that order. The logs and
// kubeconfigs stay in Dir for inspection.
func (c *Cluster) Stop() error {
	var errs []error
	if c.Cluster != nil {
		errs = append(errs, c.Cluster.Stop())
	}
	for _, f := range c.logs {
		errs = append(errs, f.Close())
	}
	c.logs = nil
	return errors.Join(errs...)
}
