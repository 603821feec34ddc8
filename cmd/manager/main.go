// Command manager runs the istio-gateway-operator: it provisions the Deployment, Service,
// HorizontalPodAutoscaler and PodDisruptionBudget behind every Gateway of its class.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "validate" {
		return runValidate(args[1:], os.Stdin, os.Stdout)
	}
	if len(args) > 0 && args[0] == "render" {
		return runRender(args[1:], os.Stdin, os.Stdout)
	}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	var (
		metricsAddr    string
		probeAddr      string
		pprofAddr      string
		leaderElect    bool
		leaderElectNS  string
		enableWebhooks bool
		webhookPort    int
		webhookCertDir string
		opts           controllers.Options
	)
	fs.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; \"0\" disables it.")
	fs.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	fs.StringVar(&pprofAddr, "pprof-bind-address", "", "Address the pprof endpoints bind to; empty disables them.")
	fs.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader through a Lease so that only one replica reconciles at a time.")
	fs.StringVar(&leaderElectNS, "leader-election-namespace", "", "Namespace of the leader-election Lease; defaults to --system-namespace.")
	fs.BoolVar(&enableWebhooks, "enable-webhooks", true, "Serve the validating webhooks (needs a serving certificate in --webhook-cert-dir).")
	fs.IntVar(&webhookPort, "webhook-port", 9443, "Port the validating webhooks are served on.")
	fs.StringVar(&webhookCertDir, "webhook-cert-dir", "", "Directory with tls.crt and tls.key for the webhooks; defaults to controller-runtime's.")
	fs.StringVar(&opts.GatewayClassName, "gateway-class", v1alpha1.DefaultGatewayClassName, "GatewayClass the operator creates when missing; every GatewayClass with controllerName "+v1alpha1.ControllerName+" is served.")
	statusMode := fs.String("status-mode", string(controllers.StatusBesideIstiod), fmt.Sprintf("Who writes Gateway API status, one of %v: %s (istiod writes the specification's conditions, listeners and addresses; the operator only its own conditions) or %s (no istiod: the operator writes all of it).",
		controllers.StatusModes, controllers.StatusBesideIstiod, controllers.StatusStandalone))
	fs.BoolVar(&opts.RouteStatus, "route-status", false, "Write HTTPRoutes' parent status for the operator's Gateways; only where no istiod runs, which writes the same entries.")
	fs.StringVar(&opts.SystemNamespace, "system-namespace", v1alpha1.DefaultSystemNamespace, "Control-plane namespace: class defaults, istiod and the leader Lease live here.")
	fs.StringVar(&opts.Revision, "revision", "", "Control-plane revision this instance serves (for example asm-1-26); empty serves the default revision.")
	fs.IntVar(&opts.MaxConcurrentReconciles, "max-concurrent-reconciles", controllers.DefaultMaxConcurrentReconciles, "Gateways reconciled in parallel.")
	fs.StringVar(&opts.ProxyImage, "proxy-image", "", "Override of the proxy image, which otherwise comes from the revision's injector values (ConfigMap istio-sidecar-injector[-<revision>]).")
	// controller-runtime registers --kubeconfig on the default FlagSet; expose it here too.
	if kubeconfig := flag.CommandLine.Lookup("kubeconfig"); kubeconfig != nil {
		fs.Var(kubeconfig.Value, kubeconfig.Name, kubeconfig.Usage)
	}
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	opts.StatusMode = controllers.StatusMode(*statusMode)
	if err := opts.Validate(); err != nil {
		return err
	}

	if leaderElectNS == "" {
		leaderElectNS = opts.SystemNamespace
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(gatewayv1.Install(scheme))

	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	leaseName := "istio-gateway-operator"
	if opts.Revision != "" {
		leaseName += "-" + opts.Revision
	}
	mgr, err := ctrl.NewManager(controllers.InstrumentConfig(restConfig), ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:        probeAddr,
		PprofBindAddress:              pprofAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              leaseName,
		LeaderElectionNamespace:       leaderElectNS,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controllers.CacheOptions(opts),
		WebhookServer:                 webhook.NewServer(webhook.Options{Port: webhookPort, CertDir: webhookCertDir}),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	if err := controllers.SetupWithManager(mgr, opts); err != nil {
		return fmt.Errorf("setting up controllers: %w", err)
	}
	if enableWebhooks {
		if err := controllers.SetupWebhooks(mgr, opts); err != nil {
			return fmt.Errorf("setting up webhooks: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}
	if enableWebhooks {
		// A replica takes webhook traffic only once it serves it.
		if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
			return fmt.Errorf("adding webhook readiness check: %w", err)
		}
	}
	if opts.StatusMode == controllers.StatusBesideIstiod {
		log.Info("Status mode beside-istiod: istiod writes GatewayClass status and the Gateways' Accepted, Programmed, listeners and addresses; this operator writes only its own gateway.istio.io/ conditions")
	} else {
		log.Info("Status mode standalone: this operator writes all Gateway API status; run istiod with PILOT_ENABLE_GATEWAY_API_STATUS=false beside it, or use --status-mode=beside-istiod")
	}
	log.Info("Starting manager", "statusMode", opts.StatusMode, "defaultGatewayClass", opts.GatewayClassName, "routeStatus", opts.RouteStatus, "systemNamespace", opts.SystemNamespace,
		"revision", opts.Revision, "proxyImage", opts.ProxyImage, "leaderElection", leaderElect, "webhooks", enableWebhooks)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	log.Info("Manager stopped")
	return nil
}
