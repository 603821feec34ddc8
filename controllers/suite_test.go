package controllers_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
	"github.com/kubegate/istio-gateway-operator/test/apicounter"
	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

const (
	systemNamespace = v1alpha1.DefaultSystemNamespace
	proxyImage      = "docker.io/istio/proxyv2:1.26.3"
	// testFieldOwner is how the tests' own writes appear, like a user's kubectl.
	testFieldOwner = "kubectl"
)

var (
	cluster    *localcluster.Cluster
	k8sClient  client.Client
	restConfig *rest.Config
	scheme     = runtime.NewScheme()
	// operatorRequests counts every API request the operator under test makes.
	operatorRequests = apicounter.New()
	stopManager      context.CancelFunc
	managerDone      chan struct{}
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers Suite")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(gatewayv1.Install(scheme))
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	SetDefaultConsistentlyDuration(2 * time.Second)

	var err error
	cluster, err = localcluster.Start(context.Background(), localcluster.Options{
		Namespaces:       []string{systemNamespace},
		WebhookManifests: []string{filepath.Join("..", "config", "webhook", "manifests.yaml")},
	})
	Expect(err).NotTo(HaveOccurred())
	restConfig = cluster.Config
	c, err := client.New(restConfig, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	k8sClient = client.WithFieldOwner(c, testFieldOwner)
	startManager()
})

var _ = AfterSuite(func() {
	if stopManager != nil {
		stopManager()
		Eventually(managerDone).Should(BeClosed())
	}
	if cluster != nil {
		Expect(cluster.Stop()).To(Succeed())
	}
})

// startManager runs the operator in-process, as cmd/manager wires it, with its API
// requests counted.
func startManager() {
	opts := controllers.Options{
		GatewayClassName: v1alpha1.DefaultGatewayClassName,
		SystemNamespace:  systemNamespace,
		ProxyImage:       proxyImage,
		// No istiod runs here: the operator writes route status, as in make demo.
		RouteStatus: true,
	}
	host, port, certDir := cluster.WebhookServing()
	mgr, err := ctrl.NewManager(operatorRequests.Wrap(restConfig), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions(opts),
		WebhookServer:          webhook.NewServer(webhook.Options{Host: host, Port: port, CertDir: certDir}),
		// A restart spec starts the operator again in this process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controllers.SetupWithManager(mgr, opts)).To(Succeed())
	Expect(controllers.SetupWebhooks(mgr, opts)).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	stopManager = cancel
	managerDone = make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(managerDone)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
}
