// Command run-local is `make run`: it starts a local control plane (etcd, kube-apiserver,
// kube-controller-manager), writes its kubeconfig, runs the operator binary against it in
// the foreground, and on Ctrl-C stops the operator, then the control plane, leaving no
// process or temporary directory behind.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "run-local:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run() (int, error) {
	var (
		assets     = flag.String("assets", "", "Directory of the control-plane binaries (default $KUBEBUILDER_ASSETS or bin/k8s/<version>).")
		kubeconfig = flag.String("kubeconfig-out", "bin/local/kubeconfig", "Where to write the local cluster's admin kubeconfig.")
		manager    = flag.String("manager", "bin/manager", "The operator binary to run.")
		systemNS   = flag.String("system-namespace", v1alpha1.DefaultSystemNamespace, "Control-plane namespace to create.")
		logFile    = flag.String("control-plane-log", "bin/local/control-plane.log", "Where kube-controller-manager logs.")
		webhooks   = flag.String("webhook-manifests", "config/webhook/manifests.yaml", "Webhook configuration to install, pointed at the local operator; empty installs none.")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: run-local [flags] [-- manager flags]\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if err := os.MkdirAll(filepath.Dir(*logFile), 0o755); err != nil {
		return 1, err
	}
	cpLog, err := os.Create(*logFile)
	if err != nil {
		return 1, err
	}
	defer cpLog.Close()

	fmt.Println("Starting the local control plane (etcd, kube-apiserver, kube-controller-manager)...")
	var webhookManifests []string
	if *webhooks != "" {
		webhookManifests = []string{*webhooks}
	}
	cluster, err := localcluster.Start(ctx, localcluster.Options{
		AssetsDir:         *assets,
		Namespaces:        []string{*systemNS},
		ControllerManager: true,
		WebhookManifests:  webhookManifests,
		Output:            cpLog,
	})
	if err != nil {
		return 1, err
	}
	defer func() {
		fmt.Println("Stopping the local control plane...")
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "run-local: stopping the control plane:", err)
		}
	}()
	if err := cluster.WriteKubeconfig(*kubeconfig); err != nil {
		return 1, err
	}
	// The default revision's mesh and injector ConfigMaps, as Istio's chart installs them:
	// the operator renders the proxies from them (--proxy-image overrides the image).
	admin, err := client.New(cluster.Config, client.Options{})
	if err != nil {
		return 1, fmt.Errorf("creating the admin client: %w", err)
	}
	if err := localcluster.InstallIstioRevision(ctx, admin, *systemNS, ""); err != nil {
		return 1, err
	}
	defer os.Remove(*kubeconfig)
	abs, _ := filepath.Abs(*kubeconfig)
	fmt.Printf(`
Local control plane is up (Kubernetes %s); control-plane logs: %s
In another shell:
    export KUBECONFIG=%s
    kubectl get gateways -A
(kubectl is built into bin/k8s/%s if the machine has none.)
Starting the operator; Ctrl-C stops it and the control plane.

`, localcluster.K8sVersion, *logFile, abs, localcluster.K8sVersion)

	// No istiod runs on the local control plane: the operator writes all of the status.
	args := []string{"--kubeconfig=" + abs, "--system-namespace=" + *systemNS, "--status-mode=standalone"}
	if *webhooks != "" {
		_, port, certDir := cluster.WebhookServing()
		// envtest signed the serving certificate and put its CA in the configuration.
		args = append(args, fmt.Sprintf("--webhook-port=%d", port), "--webhook-certs=files", "--webhook-cert-dir="+certDir)
	} else {
		args = append(args, "--enable-webhooks=false")
	}
	args = append(args, flag.Args()...)
	cmd := exec.Command(*manager, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Its own process group: Ctrl-C reaches it through this process, after which the
	// control plane stops, in that order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("starting %s: %w", *manager, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	select {
	case err := <-exited:
		return exitCode(err), fmt.Errorf("the operator exited: %w", errOrNil(err))
	case err := <-cluster.Failed():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		return 1, err
	case sig := <-signals:
		fmt.Printf("\nReceived %s; stopping the operator...\n", sig)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil && exitCode(err) != 0 {
				return exitCode(err), fmt.Errorf("the operator exited: %w", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return 1, errors.New("the operator did not stop within 30s and was killed")
		}
	}
	return 0, nil
}

func exitCode(err error) int {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

func errOrNil(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}
