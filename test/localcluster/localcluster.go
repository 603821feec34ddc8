// Package localcluster starts a Kubernetes control plane on this machine from the binaries
// `make k8s-assets` builds: etcd and kube-apiserver through envtest, plus, on request,
// kube-controller-manager and kube-scheduler as child processes. `make run`, the envtest
// suites and the end-to-end suite share it, so all of them see the same cluster shape.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	// Output receives the child processes' logs; nil discards them.
	Output *os.File
}

// Cluster is a running local control plane.
type Cluster struct {
	Env *envtest.Environment
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the same admin identity as a kubeconfig file's contents.
	Kubeconfig []byte

	dir      string
	mu       sync.Mutex
	children []*child
	stopping bool
	failed   chan error
}

type child struct {
	cmd  *exec.Cmd
	done chan struct{}
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
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: opts.WebhookManifests},
	}
	// Room for thousands of Services (envtest's default range holds 254).
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", ServiceCIDR)
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", assets, err)
	}
	c := &Cluster{Env: env, Config: cfg, failed: make(chan error, 2)}
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
	cmd := exec.Command(binary, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if output != nil {
		cmd.Stdout, cmd.Stderr = output, output
	}
	// Its own process group, so that a terminal's Ctrl-C reaches it only through Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", filepath.Base(binary), err)
	}
	ch := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		close(ch.done)
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		if !stopping {
			select {
			case c.failed <- fmt.Errorf("%s exited unexpectedly (%v); see its log", filepath.Base(binary), err):
			default: // an earlier failure is already waiting to be read
			}
		}
	}()
	c.mu.Lock()
	c.children = append(c.children, ch)
	c.mu.Unlock()
	return nil
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
		_ = ch.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-ch.done:
		case <-time.After(10 * time.Second):
			_ = ch.cmd.Process.Kill()
			<-ch.done
		}
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
