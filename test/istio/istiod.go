//go:build istio

package istio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/test/e2e/cluster"
	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

// istiodUser is the identity istiod runs under here; the audit log names its writes by it.
const istiodUser = "istiod"

// Revision settings the suite installs, none of them Istio's defaults, so that a proxy
// rendered from anything but the revision's own configuration shows.
const (
	trustDomain = "td.example"
	meshID      = "mesh-test"
	clusterName = "cluster-test"
	network     = "net-test"
)

// revision is the default revision as `istioctl manifest generate` renders it for one set
// of istiod settings: the ConfigMaps istiod and the operator read, and istiod's own
// command line and environment from its Deployment.
type revision struct {
	configMaps []*corev1.ConfigMap
	args       []string
	env        []string
}

// renderRevision runs istioctl (built by `make istio-tools`) with the suite's revision
// settings and the given pilot environment (`values.pilot.env.*`, as a user sets them).
func renderRevision(ctx context.Context, toolsDir string, pilotEnv map[string]string) (*revision, error) {
	args := []string{"manifest", "generate", "--set", "profile=minimal",
		"--set", "values.global.istioNamespace=" + v1alpha1.DefaultSystemNamespace,
		"--set", "values.global.hub=" + localcluster.IstioProxyHub,
		"--set", "values.global.tag=" + localcluster.IstioProxyTag,
		"--set", "meshConfig.trustDomain=" + trustDomain,
		"--set", "values.global.meshID=" + meshID,
		"--set", "values.global.multiCluster.clusterName=" + clusterName,
		"--set", "values.global.network=" + network,
	}
	for k, v := range pilotEnv {
		args = append(args, "--set", "values.pilot.env."+k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(toolsDir, "istioctl"), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("istioctl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	rev := &revision{}
	decoder := utilyaml.NewYAMLOrJSONDecoder(&stdout, 4096)
	for {
		raw := map[string]any{}
		if err := decoder.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("reading istioctl's manifest: %w", err)
		}
		switch raw["kind"] {
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, cm); err != nil {
				return nil, fmt.Errorf("decoding a ConfigMap: %w", err)
			}
			if cm.Namespace == v1alpha1.DefaultSystemNamespace {
				rev.configMaps = append(rev.configMaps, cm)
			}
		case "Deployment":
			d := &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, d); err != nil {
				return nil, fmt.Errorf("decoding a Deployment: %w", err)
			}
			if d.Name != "istiod" {
				continue
			}
			c := d.Spec.Template.Spec.Containers[0]
			rev.args = c.Args
			for _, e := range c.Env {
				if e.ValueFrom == nil && e.Name != "KUBECONFIG" {
					rev.env = append(rev.env, e.Name+"="+e.Value)
				}
			}
		}
	}
	if len(rev.configMaps) == 0 || rev.args == nil {
		return nil, fmt.Errorf("istioctl's manifest has %d ConfigMaps in %s and istiod's args %v; expected both", len(rev.configMaps), v1alpha1.DefaultSystemNamespace, rev.args)
	}
	return rev, nil
}

// install replaces the environment's stand-in revision ConfigMaps with the rendered ones.
func (r *revision) install(ctx context.Context, c client.Client) error {
	for _, stale := range localcluster.IstioRevisionConfigMaps(v1alpha1.DefaultSystemNamespace, "") {
		if err := c.Delete(ctx, stale); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting the stand-in ConfigMap %s: %w", stale.Name, err)
		}
	}
	for _, cm := range r.configMaps {
		cm = cm.DeepCopy()
		if err := c.Create(ctx, cm); err != nil {
			return fmt.Errorf("creating ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
	return nil
}

// startIstiod runs pilot-discovery out of cluster as istiod's chart would run it (its
// args and environment from the rendered Deployment), under its own identity and working
// directory, on free local ports, and waits for its /ready.
func startIstiod(ctx context.Context, env *cluster.Cluster, toolsDir string, rev *revision) (*localcluster.Process, error) {
	dir := filepath.Join(env.Dir, "istiod")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	user, err := env.Env.AddUser(envtest.User{Name: istiodUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding istiod's user: %w", err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, user.Config().Host, user.Config().CAData, user.Config().CertData, user.Config().KeyData); err != nil {
		return nil, err
	}
	ports := make([]int, 6)
	for i := range ports {
		if ports[i], err = cluster.FreePort(); err != nil {
			return nil, err
		}
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	args := append(append([]string{}, rev.args...),
		"--kubeconfig="+kubeconfig,
		"--httpAddr="+httpAddr,
		fmt.Sprintf("--httpsAddr=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("--grpcAddr=127.0.0.1:%d", ports[2]),
		fmt.Sprintf("--secureGRPCAddr=127.0.0.1:%d", ports[3]),
		fmt.Sprintf("--monitoringAddr=127.0.0.1:%d", ports[4]),
		fmt.Sprintf("--ctrlz_port=%d", ports[5]),
		"--ctrlz_address=127.0.0.1",
	)
	log, err := os.Create(filepath.Join(dir, "istiod.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(toolsDir, "pilot-discovery"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KUBECONFIG=")
	cmd.Env = append(cmd.Env, rev.env...)
	cmd.Env = append(cmd.Env, "POD_NAME=istiod-test", "POD_NAMESPACE="+v1alpha1.DefaultSystemNamespace, "SERVICE_ACCOUNT=istiod")
	process, err := env.LaunchCommand(cmd, log)
	if err != nil {
		return nil, err
	}
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := probe.Get("http://" + httpAddr + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return process, nil
			}
		}
		select {
		case failure := <-env.Failed():
			return nil, fmt.Errorf("waiting for istiod's /ready: %w (log %s)", failure, log.Name())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("istiod not ready after 2m; see %s", log.Name())
		}
	}
}

func writeKubeconfig(path, host string, ca, cert, key []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: ca}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "user"}
	cfg.CurrentContext = "local"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// newScheme knows the kinds the suite reads.
func newScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	return scheme
}
