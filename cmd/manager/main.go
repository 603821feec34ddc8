// Command manager runs the istio-gateway-operator: it provisions the Deployment, Service,
// HorizontalPodAutoscaler and PodDisruptionBudget behind every Gateway of its class.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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

// The sources of the webhooks' serving certificate (--webhook-certs).
const (
	webhookCertsSelf  = "self"
	webhookCertsFiles = "files"
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
		webhookCerts   string
		webhookDNS     string
		webhookService string
		certs          controllers.WebhookCertOptions
		opts           controllers.Options
	)
	fs.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; \"0\" disables it.")
	fs.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	fs.StringVar(&pprofAddr, "pprof-bind-address", "", "Address the pprof endpoints bind to; empty disables them.")
	fs.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader through a Lease so that only one replica reconciles at a time.")
	fs.StringVar(&leaderElectNS, "leader-election-namespace", "", "Namespace of the leader-election Lease; defaults to --system-namespace.")
	fs.BoolVar(&enableWebhooks, "enable-webhooks", true, "Serve the validating webhooks (needs a serving certificate in --webhook-cert-dir).")
	fs.IntVar(&webhookPort, "webhook-port", 9443, "Port the validating webhooks are served on.")
	fs.StringVar(&webhookCertDir, "webhook-cert-dir", "", "Directory of the webhooks' tls.crt and tls.key: read with --webhook-certs=files, a copy of the Secret's pair with self; defaults to controller-runtime's.")
	fs.StringVar(&webhookCerts, "webhook-certs", webhookCertsSelf, fmt.Sprintf("Where the webhooks' serving certificate comes from: %s (the operator issues and rotates it in --webhook-cert-secret and keeps --webhook-configuration's caBundle) or %s (another issuer, cert-manager say, mounts tls.crt and tls.key in --webhook-cert-dir and injects the CA).", webhookCertsSelf, webhookCertsFiles))
	fs.StringVar(&certs.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "The operator's own namespace, which holds the webhook certificate Secret; defaults to $POD_NAMESPACE, then --system-namespace.")
	fs.StringVar(&certs.SecretName, "webhook-cert-secret", controllers.DefaultWebhookSecret, "With --webhook-certs=self: the Secret, in --namespace, that keeps the webhooks' CA and serving certificate; the only Secret the operator writes.")
	fs.StringVar(&certs.WebhookConfiguration, "webhook-configuration", controllers.DefaultWebhookConfiguration, "With --webhook-certs=self: the ValidatingWebhookConfiguration whose caBundle the operator keeps.")
	fs.StringVar(&webhookService, "webhook-service", controllers.DefaultWebhookService, "With --webhook-certs=self: the Service in --namespace the API server calls the webhooks through; the certificate names <service>.<namespace>.svc.")
	fs.StringVar(&webhookDNS, "webhook-dns-names", "", "With --webhook-certs=self: comma-separated names for the certificate instead of the Service's (a webhook reached by URL, say).")
	fs.DurationVar(&certs.Validity, "webhook-cert-validity", controllers.DefaultWebhookCertValidity, "With --webhook-certs=self: how long a serving certificate is valid.")
	fs.DurationVar(&certs.RenewBefore, "webhook-cert-renew-before", controllers.DefaultWebhookCertRenewal, "With --webhook-certs=self: how long before its end a serving certificate (and, as its end nears, the CA) is replaced.")
	fs.DurationVar(&certs.CheckInterval, "webhook-cert-check-interval", controllers.DefaultWebhookCertCheck, "With --webhook-certs=self: how often the certificate's end is checked.")
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
	if webhookCerts != webhookCertsSelf && webhookCerts != webhookCertsFiles {
		return fmt.Errorf("--webhook-certs must be %s or %s, not %q", webhookCertsSelf, webhookCertsFiles, webhookCerts)
	}
	selfCerts := enableWebhooks && webhookCerts == webhookCertsSelf
	if selfCerts {
		if certs.Namespace == "" {
			certs.Namespace = opts.SystemNamespace
		}
		certs.DNSNames = controllers.ServiceDNSNames(webhookService, certs.Namespace)
		if webhookDNS != "" {
			certs.DNSNames = strings.Split(webhookDNS, ",")
		}
		if webhookCertDir == "" {
			webhookCertDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
		}
		certs.CertDir = webhookCertDir
		if err := certs.Validate(); err != nil {
			return err
		}
	}
	serving := controllers.NewServingCertificate()
	webhookOptions := webhook.Options{Port: webhookPort, CertDir: webhookCertDir}
	if selfCerts {
		webhookOptions.TLSOpts = []func(*tls.Config){serving.TLSOption}
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(gatewayv1.Install(scheme))

	ctx := ctrl.SetupSignalHandler()
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
		WebhookServer:                 webhook.NewServer(webhookOptions),
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
	if selfCerts {
		if err := controllers.SetupWebhookCerts(ctx, mgr, serving, certs); err != nil {
			return fmt.Errorf("setting up the webhook certificate: %w", err)
		}
		if err := mgr.AddReadyzCheck("webhook-certificate", serving.Ready); err != nil {
			return fmt.Errorf("adding the webhook certificate's readiness check: %w", err)
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
		"revision", opts.Revision, "proxyImage", opts.ProxyImage, "leaderElection", leaderElect, "webhooks", enableWebhooks, "webhookCerts", webhookCerts)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	log.Info("Manager stopped")
	return nil
}
