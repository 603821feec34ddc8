// Command demo is `make demo`: it starts the end-to-end environment (control plane,
// controllers, kwok nodes, MetalLB, the operator under its ServiceAccount), plays the
// walkthrough step by step printing each kubectl command with its real output, then keeps
// the environment running until Ctrl-C, or exits at once when DEMO_EXIT=1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kubegate/istio-gateway-operator/test/e2e/cluster"
)

// step is one kubectl command of the walkthrough; a step that is expected to be refused
// (the webhook's rejection) fails the demo when it succeeds.
type step struct {
	say     string
	args    []string
	refused bool
}

func walkthrough() []step {
	const gw = "httpbin-gateway-istio"
	return []step{
		{say: "Two simulated nodes (kwok) and the GatewayClass the operator created:",
			args: []string{"get", "nodes"}},
		{args: []string{"wait", "--for=condition=accepted", "gatewayclass/istio", "--timeout=60s"}},
		{args: []string{"get", "gatewayclass", "istio"}},
		{say: "1. Deploy the sample app, the Gateway and its HTTPRoute (config/samples):",
			args: []string{"apply", "-f", "config/samples/httpbin.yaml", "-f", "config/samples/httpbin-gateway.yaml"}},
		{args: []string{"wait", "--for=condition=programmed", "gateways.gateway.networking.k8s.io", "httpbin-gateway", "--timeout=120s"}},
		{args: []string{"rollout", "status", "deployment/" + gw, "--timeout=120s"}},
		{args: []string{"wait", "--for=jsonpath={.status.currentReplicas}=2", "hpa/" + gw, "--timeout=60s"}},
		{args: []string{"wait", "--for=jsonpath={.status.currentHealthy}=2", "pdb/" + gw, "--timeout=60s"}},
		{say: "2. What the operator created:",
			args: []string{"get", "deployment", gw}},
		{args: []string{"get", "service", gw}},
		{args: []string{"get", "hpa", gw}},
		{args: []string{"get", "pdb", gw}},
		{args: []string{"get", "gateways.gateway.networking.k8s.io", "httpbin-gateway", "-ojsonpath={.status.addresses[0].value}{\"\\n\"}"}},
		{args: []string{"get", "gateways.gateway.networking.k8s.io", "httpbin-gateway"}},
		{say: "The class defaults ConfigMap the operator created (never overwritten once there):",
			args: []string{"get", "configmap", "-n", "aks-istio-system", "istio-gateway-class-defaults", "-o", "jsonpath={.data}{\"\\n\"}"}},
		{say: "4. Case A: edit the class defaults (HPA 3/6, a Deployment label):",
			args: []string{"replace", "-f", "config/samples/class-defaults-case-a.yaml"}},
		{args: []string{"wait", "--for=jsonpath={.spec.minReplicas}=3", "hpa/" + gw, "--timeout=60s"}},
		{args: []string{"wait", "--for=jsonpath={.status.currentReplicas}=3", "hpa/" + gw, "--timeout=60s"}},
		{args: []string{"rollout", "status", "deployment/" + gw, "--timeout=120s"}},
		{args: []string{"get", "hpa", gw}},
		{args: []string{"get", "deployment", gw, "-L", "test.azureservicemesh.io/deployment-config"}},
		{say: "Case B: a Gateway-level ConfigMap wins over the class (HPA 2/4, the label's value):",
			args: []string{"apply", "-f", "config/samples/gateway-options-case-b.yaml"}},
		{args: []string{"wait", "--for=jsonpath={.spec.maxReplicas}=4", "hpa/" + gw, "--timeout=60s"}},
		{args: []string{"get", "hpa", gw}},
		{args: []string{"get", "deployment", gw, "-L", "test.azureservicemesh.io/deployment-config"}},
		{args: []string{"get", "gateways.gateway.networking.k8s.io", "httpbin-gateway", "-o",
			`jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}`}},
		{say: "5. A field off the allowlist is refused at admission, naming every offending path:",
			args: []string{"replace", "-f", "config/samples/bad-class-defaults.yaml"}, refused: true},
		{say: "6. The platform team's policy in the class defaults (node pool and internal load balancer enforced, at most 10 replicas):",
			args: []string{"replace", "-f", "config/samples/class-defaults-policy.yaml"}},
		{args: []string{"wait", "--for=jsonpath={.spec.template.spec.nodeSelector.kubernetes\\.io/os}=linux", "deployment/" + gw, "--timeout=60s"}},
		{say: "A Gateway owner's override of the node pool, the load balancer and the replicas is refused, naming each rule:",
			args: []string{"apply", "-f", "config/samples/tenant-forbidden-override.yaml"}, refused: true},
		{say: "The platform's values are kept:",
			args: []string{"get", "deployment", gw, "-o", `jsonpath={.spec.template.spec.nodeSelector}{"\n"}`}},
		{args: []string{"get", "service", gw, "-o", `jsonpath={.metadata.annotations.service\.beta\.kubernetes\.io/azure-load-balancer-internal}{"\n"}`}},
		{args: []string{"get", "hpa", gw}},
	}
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "bin/e2e/demo", "Where the logs and kubeconfigs go.")
	flag.Parse()
	exit := os.Getenv("DEMO_EXIT") == "1"

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	fmt.Println("Starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (2 nodes),")
	fmt.Println("MetalLB's controller and bin/manager under its ServiceAccount...")
	env, err := cluster.Start(ctx, cluster.Options{Dir: *dir})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("Stopping the environment...")
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: stopping:", err)
		}
	}()
	fmt.Printf("Up. Logs: %s\n", env.Dir)

	for _, s := range walkthrough() {
		if s.say != "" {
			fmt.Printf("\n# %s\n", s.say)
		}
		fmt.Printf("$ kubectl %s\n", quote(s.args))
		stdout, stderr, err := env.Kubectl(ctx, "", s.args...)
		fmt.Print(stdout)
		fmt.Print(stderr)
		switch {
		case s.refused && err == nil:
			return errors.New("the webhook admitted a ConfigMap it must refuse")
		case !s.refused && err != nil:
			fmt.Println(env.Diagnostics(ctx))
			return fmt.Errorf("kubectl %s: %w", quote(s.args), err)
		}
	}

	abs, _ := filepath.Abs(env.AdminKubeconfig)
	if exit {
		fmt.Println("\nDEMO_EXIT=1: done.")
		return nil
	}
	fmt.Printf(`
The environment keeps running. In another shell:
    export KUBECONFIG=%s
    export PATH=%s:$PATH
    kubectl get gateways,deploy,svc,hpa,pdb,pods -A
Operator log: %s
Ctrl-C stops everything.
`, abs, filepath.Dir(env.KubectlBinary), env.ManagerLog)
	select {
	case <-ctx.Done():
		fmt.Println()
	case err := <-env.Failed():
		return err
	}
	return nil
}

// quote shows arguments as a shell would need them typed.
func quote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " {}\"'$*\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
