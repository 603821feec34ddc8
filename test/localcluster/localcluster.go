// Package localcluster starts a Kubernetes control plane on this machine from the binaries
// `make k8s-assets` builds: etcd and kube-apiserver through envtest, plus, on request,
// kube-controller-manager and kube-scheduler as child processes. `make run`, the envtest
// suites and the end-to-end suite share it, so all of them see the same cluster shape.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// K8sVersion is the Kubernetes release whose binaries the project builds and tests against.
const K8sVersion = "v1.37.2"

// ServiceCIDR is the Service cluster IP range: a /16, enough for the benchmark's
// thousands of Gateways.
const ServiceCIDR = "10.96.0.0/16"

// Options choose what runs besides etcd and kube-apiserver.
type Options struct {
	// AssetsDir holds etcd, kube-apiserver and the other binaries; defaults to
	// $KUBEBUILDER_ASSETS, then bin/k8s/<K8sVersion> under the module root.
	AssetsDir string
	// CRDDirectoryPaths are installed before Start returns; the Gateway API standard CRDs
	// are always installed.
	CRDDirectoryPaths []string
	// Namespaces are created before Start returns.
	Namespaces []string
	// ControllerManager also runs kube-controller-manager (garbage collection, Deployments,
	// ReplicaSets, HPAs, disruption budgets).
	ControllerManager bool
	// Scheduler also runs kube-scheduler.
	Scheduler bool
	// WebhookManifests are webhook configuration files to install, rewritten to call a
	// webhook server on this machine; WebhookServing tells where it must listen.
	WebhookManifests []string
	// WebhookHost is the name the rewritten webhook configurations call instead of
	// 127.0.0.1 ("localhost", say, for a server whose certificate has only DNS names).
	WebhookHost string
	// Output receives the child processes' logs; nil discards them.
	Output *os.File
	// AuditLog, when set, is where kube-apiserver writes one JSON line per write request
	// (AuditPolicy), so that a test can tell who wrote what, however many processes write.
	AuditLog string
}

// AuditPolicy records every mutating request to the Gateway API, the kinds the operator
// generates, ConfigMaps and Events at Metadata level (who, what, when; no bodies), once the
// response is complete. Reads and Leases (leader election renews every few seconds) are
// left out.
const AuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
  resources:
  - group: gateway.networking.k8s.io
  - group: apps
    resources: [deployments]
  - group: ""
    resources: [services, configmaps, events, serviceaccounts]
  - group: autoscaling
    resources: [horizontalpodautoscalers]
  - group: policy
    resources: [poddisruptionbudgets]
  - group: events.k8s.io
- level: None
`

// Cluster is a running local control plane.
type Cluster struct {
	Env *envtest.Environment
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the same admin identity as a kubeconfig file's contents.
	Kubeconfig []byte

	dir      string
	output   *os.File
	mu       sync.Mutex
	children []*child
	stopping bool
	failed   chan error
	// apiServer is kube-apiserver once StartAPIServer has restarted it; the flags,
	// environment and directory it runs with were read from envtest's process.
	apiServer     *child
	apiServerArgs []string
	apiServerEnv  []string
	apiServerDir  string
}

type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	// stopped is set when the cluster ends the process on purpose (StopAPIServer).
	stopped atomic.Bool
}

// Start brings the control plane up and returns when the API server serves the CRDs and
// the requested namespaces exist.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	assets, err := assetsDir(opts.AssetsDir)
	if err != nil {
		return nil, err
	}
	gatewayCRDs, err := GatewayAPICRDDir()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     append([]string{gatewayCRDs}, opts.CRDDirectoryPaths...),
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: opts.WebhookManifests, LocalServingHostExternalName: opts.WebhookHost},
	}
	// Room for thousands of Services (envtest's default range holds 254).
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", ServiceCIDR)
	if opts.AuditLog != "" {
		policy := opts.AuditLog + ".policy.yaml"
		if err := os.WriteFile(policy, []byte(AuditPolicy), 0o644); err != nil {
			return nil, fmt.Errorf("writing the audit policy: %w", err)
		}
		env.ControlPlane.GetAPIServer().Configure().
			Set("audit-policy-file", policy).
			Set("audit-log-path", opts.AuditLog).
			Set("audit-log-format", "json")
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", assets, err)
	}
	c := &Cluster{Env: env, Config: cfg, output: opts.Output, failed: make(chan error, 1)}
	if err := c.setUp(ctx, opts, assets); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

func (c *Cluster) setUp(ctx context.Context, opts Options, assets string) error {
	admin, err := c.Env.AddUser(envtest.User{Name: "local-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the admin user: %w", err)
	}
	if c.Kubeconfig, err = admin.KubeConfig(); err != nil {
		return fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	if c.dir, err = os.MkdirTemp("", "localcluster-"); err != nil {
		return fmt.Errorf("creating a temporary directory: %w", err)
	}
	kubeconfig := filepath.Join(c.dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, c.Kubeconfig, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", kubeconfig, err)
	}
	cl, err := client.New(c.Config, client.Options{})
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	for _, ns := range opts.Namespaces {
		err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	if opts.ControllerManager {
		certDir := c.Env.ControlPlane.GetAPIServer().CertDir
		if err := c.StartProcess(filepath.Join(assets, "kube-controller-manager"), opts.Output,
			"--kubeconfig="+kubeconfig,
			"--authentication-kubeconfig="+kubeconfig,
			"--authorization-kubeconfig="+kubeconfig,
			"--leader-elect=false",
			"--secure-port=0",
			"--use-service-account-credentials=false",
			"--service-account-private-key-file="+filepath.Join(certDir, "sa-signer.key"),
			"--concurrent-gc-syncs=5",
		); err != nil {
			return err
		}
	}
	if opts.Scheduler {
		if err := c.StartProcess(filepath.Join(assets, "kube-scheduler"), opts.Output,
			"--kubeconfig="+kubeconfig,
			"--authentication-kubeconfig="+kubeconfig,
			"--authorization-kubeconfig="+kubeconfig,
			"--leader-elect=false",
			"--secure-port=0",
		); err != nil {
			return err
		}
	}
	return nil
}

// StartProcess runs another component of the cluster (kwok, a load-balancer controller,
// the operator itself) as a child process that Stop ends, before the control plane and in
// the reverse order of starting; its unexpected exit is reported through Failed.
func (c *Cluster) StartProcess(binary string, output *os.File, args ...string) error {
	return c.StartProcessWithEnv(binary, nil, output, args...)
}

// StartProcessWithEnv is StartProcess with extra environment variables (KEY=value), for
// a process that must not see the caller's KUBECONFIG.
func (c *Cluster) StartProcessWithEnv(binary string, env []string, output *os.File, args ...string) error {
	_, err := c.Launch(binary, env, output, args...)
	return err
}

// Process is a child started with Launch, which its caller may end before the cluster
// stops (a test that restarts a component with other settings).
type Process struct {
	ch *child
}

// Launch is StartProcessWithEnv for a process the caller ends itself with Stop; until then
// an unexpected exit is reported through Failed as for any child.
func (c *Cluster) Launch(binary string, env []string, output *os.File, args ...string) (*Process, error) {
	cmd := exec.Command(binary, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	return c.LaunchCommand(cmd, output)
}

// LaunchCommand is Launch for a command the caller prepared, for a process that needs its
// own working directory (istiod writes its certificates under ./var).
func (c *Cluster) LaunchCommand(cmd *exec.Cmd, output *os.File) (*Process, error) {
	ch, err := c.start(cmd, output)
	if err != nil {
		return nil, err
	}
	return &Process{ch: ch}, nil
}

// Stop ends the process with SIGTERM (SIGKILL after grace) and waits for it; its exit is
// not a failure of the cluster.
func (p *Process) Stop(grace time.Duration) {
	p.ch.stopped.Store(true)
	p.ch.terminate(grace)
}

// terminate asks the process to stop with SIGTERM and kills it after grace.
func (ch *child) terminate(grace time.Duration) {
	_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch.done:
	case <-time.After(grace):
		_ = ch.cmd.Process.Kill()
		<-ch.done
	}
}

func (c *Cluster) start(cmd *exec.Cmd, output *os.File) (*child, error) {
	binary := cmd.Path
	if output != nil {
		cmd.Stdout, cmd.Stderr = output, output
	}
	// Its own process group, so that a terminal's Ctrl-C reaches it only through Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", filepath.Base(binary), err)
	}
	ch := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		close(ch.done)
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		if !stopping && !ch.stopped.Load() {
			select {
			case c.failed <- fmt.Errorf("%s exited unexpectedly (%v); see its log", filepath.Base(binary), err):
			default: // an earlier failure is already waiting to be read
			}
		}
	}()
	c.mu.Lock()
	c.children = append(c.children, ch)
	c.mu.Unlock()
	return ch, nil
}

// StopAPIServer ends kube-apiserver with SIGTERM, as an outage or a control-plane upgrade
// would, keeping etcd, the certificates and the port, so that StartAPIServer brings the
// same API server back and every client's credentials still work.
func (c *Cluster) StopAPIServer() error {
	c.mu.Lock()
	restarted := c.apiServer
	c.mu.Unlock()
	if restarted != nil {
		restarted.stopped.Store(true)
		restarted.terminate(20 * time.Second)
		c.mu.Lock()
		c.apiServer = nil
		c.mu.Unlock()
		return nil
	}
	// The first API server is envtest's; find it by its port among this process's children.
	port := c.Env.ControlPlane.GetAPIServer().SecureServing.Port
	pid, err := findChild("kube-apiserver", "--secure-port="+port)
	if err != nil {
		return err
	}
	if c.apiServerArgs, err = readNulSeparated(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil {
		return err
	}
	if c.apiServerEnv, err = readNulSeparated(fmt.Sprintf("/proc/%d/environ", pid)); err != nil {
		return err
	}
	if c.apiServerDir, err = os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil {
		return fmt.Errorf("reading kube-apiserver's working directory: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping kube-apiserver (pid %d): %w", pid, err)
	}
	// envtest reaps its process; wait until it is gone (or a zombie awaiting that), and
	// cut a slow graceful shutdown short.
	killed := false
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fields, err := procStat(pid)
		if err != nil || fields[0] == "Z" {
			return nil
		}
		if time.Now().After(deadline) {
			if killed {
				return fmt.Errorf("kube-apiserver (pid %d) did not exit after SIGKILL", pid)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed, deadline = true, time.Now().Add(10*time.Second)
		}
	}
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, with the same flags,
// and returns when it reports ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if len(c.apiServerArgs) == 0 {
		return errors.New("StartAPIServer needs a StopAPIServer first")
	}
	cmd := exec.Command(c.apiServerArgs[0], c.apiServerArgs[1:]...)
	cmd.Env, cmd.Dir = c.apiServerEnv, c.apiServerDir
	logPath := filepath.Join(c.dir, "kube-apiserver-restarted.log")
	output := c.output
	if output == nil {
		f, err := os.Create(logPath)
		if err != nil {
			return fmt.Errorf("creating %s: %w", logPath, err)
		}
		defer f.Close()
		output = f
	}
	ch, err := c.start(cmd, output)
	if err != nil {
		return err
	}
	failed := func(msg string) error {
		out, _ := os.ReadFile(logPath)
		if len(out) > 4000 {
			out = out[len(out)-4000:]
		}
		return fmt.Errorf("%s; its output ends:\n%s", msg, out)
	}
	c.mu.Lock()
	c.apiServer = ch
	c.mu.Unlock()
	httpClient, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		return fmt.Errorf("creating an HTTP client: %w", err)
	}
	var last string
	for deadline := time.Now().Add(60 * time.Second); ; {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.Config.Host, "/")+"/readyz?verbose", nil)
		if resp, err := httpClient.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return failed("kube-apiserver was not ready 60s after its restart (/readyz: " + last + ")")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch.done:
			return failed("kube-apiserver exited right after its restart")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// findChild is the pid of this process's child running name with arg among its flags.
func findChild(name, arg string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("listing processes: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args, err := readNulSeparated(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(args) == 0 || filepath.Base(args[0]) != name || !slices.Contains(args, arg) {
			continue
		}
		if fields, err := procStat(pid); err == nil && fields[1] == strconv.Itoa(os.Getpid()) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no %s child with %s", name, arg)
}

// procStat is a process's /proc/<pid>/stat after its parenthesised command name: the
// state first, then the parent pid.
func procStat(pid int) ([]string, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 2 {
		return nil, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, stat)
	}
	return fields, nil
}

func readNulSeparated(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00"), nil
}

// Failed delivers an error when a child process (kube-controller-manager,
// kube-scheduler, or one started with StartProcess) exits before Stop.
func (c *Cluster) Failed() <-chan error {
	return c.failed
}

// WebhookServing is where the installed webhook configurations send requests: the
// host and port to serve on, and the directory holding tls.crt and tls.key they trust.
func (c *Cluster) WebhookServing() (host string, port int, certDir string) {
	o := c.Env.WebhookInstallOptions
	return o.LocalServingHost, o.LocalServingPort, o.LocalServingCertDir
}

// KubeconfigPath is the admin kubeconfig file, valid until Stop.
func (c *Cluster) KubeconfigPath() string {
	return filepath.Join(c.dir, "kubeconfig")
}

// WriteKubeconfig saves the admin kubeconfig for kubectl and other clients.
func (c *Cluster) WriteKubeconfig(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, c.Kubeconfig, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Stop ends the child processes, then the API server and etcd, and removes every temporary
// directory; it is safe to call on a partly started cluster.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	children := c.children
	c.children = nil
	c.stopping = true
	c.mu.Unlock()
	var errs []error
	slices.Reverse(children)
	for _, ch := range children {
		ch.terminate(10 * time.Second)
	}
	if err := c.Env.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stopping the control plane: %w", err))
	}
	if c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func assetsDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if dir == "" {
		root, err := ModuleRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin", "k8s", K8sVersion)
	}
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		return "", fmt.Errorf("no kube-apiserver in %s: run `make k8s-assets` first", dir)
	}
	return filepath.Abs(dir)
}

// ModuleRoot is the directory of the operator's go.mod, found from the working directory.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("locating go.mod: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the operator's Go module")
	}
	return filepath.Dir(gomod), nil
}

// GatewayAPICRDDir is the standard-channel CRD directory of the gateway-api module the
// operator builds against, in the module cache: the CRDs always match the Go types.
func GatewayAPICRDDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		return "", fmt.Errorf("locating the sigs.k8s.io/gateway-api module: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("gateway-api CRDs: %w", err)
	}
	return dir, nil
}
