// Package faults_test runs the operator in-process against a real kube-apiserver while the
// API server is stopped and restarted, and while a wrapping transport injects conflict,
// throttling and server errors, counting what the operator sends.
package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
	"github.com/kubegate/istio-gateway-operator/test/apicounter"
	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

const systemNamespace = v1alpha1.DefaultSystemNamespace

var (
	cluster   *localcluster.Cluster
	k8sClient client.Client
	scheme    = runtime.NewScheme()
	// faults sits between the operator and the API server; requests counts what gets past it
	// and what it answers itself alike.
	faults   = newInjector()
	requests = apicounter.New()
)

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Faults Suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(gatewayv1.Install(scheme))
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(250 * time.Millisecond)

	var err error
	cluster, err = localcluster.Start(ctx, localcluster.Options{Namespaces: []string{systemNamespace}})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(cluster.Stop()).To(Succeed()) })
	k8sClient, err = client.New(cluster.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// ClusterIP Services: Programmed then needs no load balancer, as in the benchmark.
	Expect(k8sClient.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: v1alpha1.ClassDefaultsConfigMapName(v1alpha1.DefaultGatewayClassName), Namespace: systemNamespace,
			Labels: map[string]string{v1alpha1.DefaultsForClassLabel: v1alpha1.DefaultGatewayClassName},
		},
		Data: map[string]string{
			"horizontalPodAutoscaler": "spec:\n  minReplicas: 2\n  maxReplicas: 5\n",
			"podDisruptionBudget":     "spec:\n  minAvailable: 1\n",
			"service":                 "spec:\n  type: ClusterIP\n",
		},
	})).To(Succeed())

	opts := controllers.Options{
		GatewayClassName: v1alpha1.DefaultGatewayClassName,
		SystemNamespace:  systemNamespace,
		ProxyImage:       "docker.io/istio/proxyv2:1.26.3",
		// Failing writes show on the status after 2 s here (10 s by default).
		FailureReportDelay: 2 * time.Second,
	}
	mgr, err := ctrl.NewManager(requests.Wrap(faults.Wrap(cluster.Config)), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions(opts),
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controllers.SetupWithManager(mgr, opts)).To(Succeed())
	mgrCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	DeferCleanup(func() {
		cancel()
		Eventually(done).Should(BeClosed())
	})
}, NodeTimeout(2*time.Minute))

// newNamespace creates a namespace for one spec, so that counts per namespace are the
// spec's alone.
func newNamespace(ctx context.Context, prefix string) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func newGateway(namespace, name string) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: v1alpha1.DefaultGatewayClassName,
			Listeners: []gatewayv1.Listener{{
				Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromSame)}},
			}},
		},
	}
}

// programmed counts the namespace's Gateways whose Programmed condition is True for
// their current generation.
func programmed(ctx context.Context, namespace string) (int, error) {
	var list gatewayv1.GatewayList
	if err := k8sClient.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return 0, err
	}
	n := 0
	for _, gw := range list.Items {
		c := meta.FindStatusCondition(gw.Status.Conditions, string(gatewayv1.GatewayConditionProgrammed))
		if c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gw.Generation {
			n++
		}
	}
	return n, nil
}

// generatedObjects lists the metadata of every generated object in the namespace by kind,
// to check that each Gateway has exactly one of each, owned by it.
func generatedObjects(ctx context.Context, namespace string) (map[string][]metav1.PartialObjectMetadata, error) {
	out := map[string][]metav1.PartialObjectMetadata{}
	kinds, err := controllers.GeneratedListKinds(scheme)
	if err != nil {
		return nil, err
	}
	for kind, gvk := range kinds {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk)
		if err := k8sClient.List(ctx, list, client.InNamespace(namespace),
			client.MatchingLabels{v1alpha1.ManagedLabel: v1alpha1.ManagedLabelValue}); err != nil {
			return nil, err
		}
		out[kind] = list.Items
	}
	return out, nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func gatewayName(i int) string { return fmt.Sprintf("gw-%04d", i) }
