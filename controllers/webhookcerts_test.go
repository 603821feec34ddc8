package controllers_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
)

// certReplica is one operator replica as cmd/manager wires it with --webhook-certs=self:
// the webhook server presents the pair its certificate keeper loads from the Secret.
type certReplica struct {
	serving *controllers.ServingCertificate
	port    int
	cancel  context.CancelFunc
	done    chan struct{}
}

// Names of the objects the self-managed certificate specs own: a webhook configuration that
// only their labelled Gateways reach, so the suite's own webhooks never depend on it.
const (
	certNamespace     = "webhook-certs"
	certSecret        = "webhook-server-cert"
	certWebhookConfig = "cert-test-webhooks"
	certTestLabel     = "webhook-cert-test"
	certDNSName       = "localhost"
)

// rotators numbers the replicas: cert-controller's controller names must be unique in a
// process.
var rotators atomic.Int32

// startCertReplica runs a replica whose webhook server listens on port (a free one if 0).
func startCertReplica(port int, tune func(*controllers.WebhookCertOptions)) *certReplica {
	GinkgoHelper()
	if port == 0 {
		port = freePort()
	}
	r := &certReplica{serving: controllers.NewServingCertificate(), port: port, done: make(chan struct{})}
	opts := controllers.Options{GatewayClassName: v1alpha1.DefaultGatewayClassName, SystemNamespace: systemNamespace, ProxyImage: proxyImage}
	certs := controllers.WebhookCertOptions{
		Namespace: certNamespace, SecretName: certSecret, WebhookConfiguration: certWebhookConfig,
		DNSNames: []string{certDNSName}, CertDir: GinkgoT().TempDir(),
		Validity: controllers.DefaultWebhookCertValidity, RenewBefore: controllers.DefaultWebhookCertRenewal, CheckInterval: controllers.DefaultWebhookCertCheck,
		ControllerName: fmt.Sprintf("cert-rotator-%d", rotators.Add(1)),
	}
	if tune != nil {
		tune(&certs)
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: r.port, TLSOpts: []func(*tls.Config){r.serving.TLSOption}}),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controllers.SetupWebhooks(mgr, opts)).To(Succeed())
	Expect(controllers.SetupWebhookCerts(ctx, mgr, r.serving, certs)).To(Succeed())
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		defer close(r.done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return r
}

func (r *certReplica) stop() {
	r.cancel()
	Eventually(r.done).Should(BeClosed())
}

// certTestWebhooks sends the specs' labelled Gateways, dry run, to replica port's
// Gateway webhook by URL, with failurePolicy Fail and no caBundle: until the operator
// injects its CA, the API server refuses them.
func certTestWebhooks(port int) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: certWebhookConfig},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "certs.test.gateway.istio.io",
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			TimeoutSeconds:          ptr.To[int32](5),
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{certTestLabel: "true"}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{gatewayv1.GroupName}, APIVersions: []string{"v1"}, Resources: []string{"gateways"}},
			}},
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL: ptr.To(fmt.Sprintf("https://%s%s", net.JoinHostPort(certDNSName, strconv.Itoa(port)), controllers.GatewayWebhookPath)),
			},
		}},
	}
}

// admitThroughAPIServer creates a labelled Gateway, dry run: it succeeds only if the API
// server reached the replica's webhook over TLS and trusted its certificate.
func admitThroughAPIServer() error {
	gw := httpGateway(certNamespace, "through-the-api-server")
	gw.Labels = map[string]string{certTestLabel: "true"}
	return k8sClient.Create(ctx, gw, client.DryRunAll)
}

func webhookSecret(g Gomega) *corev1.Secret {
	secret := &corev1.Secret{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: certNamespace, Name: certSecret}, secret)).To(Succeed())
	return secret
}

func injectedCA(g Gomega) []byte {
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: certWebhookConfig}, vwc)).To(Succeed())
	return vwc.Webhooks[0].ClientConfig.CABundle
}

// servedCertificate is what the replica presents to a client that trusts caPEM and dials
// the certificate's DNS name, as the API server does.
func servedCertificate(g Gomega, port int, caPEM []byte) *x509.Certificate {
	pool := x509.NewCertPool()
	g.Expect(pool.AppendCertsFromPEM(caPEM)).To(BeTrue(), "no CA in %q", caPEM)
	conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{RootCAs: pool, ServerName: certDNSName})
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

var _ = Describe("The self-managed webhook certificate", Ordered, func() {
	var first *certReplica
	port := freePort() // the replica the webhook configuration calls listens here

	BeforeAll(func() {
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: certNamespace}}))).To(Succeed())
		Expect(k8sClient.Create(ctx, certTestWebhooks(port))).To(Succeed())
		DeferCleanup(func() {
			if first != nil {
				first.stop()
			}
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, certTestWebhooks(port)))).To(Succeed())
		})
	})

	It("is issued on a first start with no Secret, and readiness waits until the API server trusts it", func() {
		// Once the API server has seen the new webhook configuration (its own cache lags a
		// create by a moment), it calls the webhook and cannot trust it yet.
		Eventually(func(g Gomega) {
			err := admitThroughAPIServer()
			g.Expect(err).To(HaveOccurred(), "the API server admitted a Gateway before any certificate existed")
			g.Expect(err.Error()).To(ContainSubstring("failed calling webhook"))
		}).Should(Succeed())
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: certNamespace, Name: certSecret}, &corev1.Secret{}))).To(BeTrue())

		first = startCertReplica(port, nil)
		Expect(first.serving.Ready(nil)).NotTo(Succeed(), "ready before anything was issued")
		Eventually(func() error { return first.serving.Ready(nil) }).Should(Succeed())
		// Ready: the Secret holds the CA that signed what is served, and the API server has it.
		secret := webhookSecret(Default)
		Expect(injectedCA(Default)).To(Equal(secret.Data["ca.crt"]))
		Expect(servedCertificate(Default, port, secret.Data["ca.crt"]).Raw).To(Equal(certificateDER(Default, secret.Data["tls.crt"])))
		// The API server sees the injected caBundle a moment after it is written.
		Eventually(admitThroughAPIServer).Should(Succeed())
	})

	It("serves the same pair from a second replica, and both agree on one CA", func() {
		second := startCertReplica(0, nil)
		defer second.stop()
		Eventually(func() error { return second.serving.Ready(nil) }).Should(Succeed())
		Eventually(func(g Gomega) {
			ca := injectedCA(g)
			g.Expect(webhookSecret(g).Data["ca.crt"]).To(Equal(ca))
			g.Expect(servedCertificate(g, second.port, ca).Raw).To(Equal(servedCertificate(g, port, ca).Raw))
		}).Should(Succeed())
		Expect(admitThroughAPIServer()).To(Succeed())
	})

	It("issues a new CA and certificate into a deleted Secret, and keeps admitting", func() {
		before := webhookSecret(Default)
		Expect(k8sClient.Delete(ctx, before)).To(Succeed())
		Eventually(func(g Gomega) {
			after := webhookSecret(g)
			g.Expect(after.UID).NotTo(Equal(before.UID))
			g.Expect(after.Data["ca.crt"]).NotTo(BeEmpty())
			g.Expect(after.Data["ca.crt"]).NotTo(Equal(before.Data["ca.crt"]))
			g.Expect(injectedCA(g)).To(Equal(after.Data["ca.crt"]))
			g.Expect(servedCertificate(g, port, after.Data["ca.crt"]).Raw).To(Equal(certificateDER(g, after.Data["tls.crt"])))
		}).Should(Succeed())
		// A new CA: for a moment the API server may still hold the old bundle (README).
		Eventually(admitThroughAPIServer).Should(Succeed())
	})

	It("replaces the serving certificate before it expires, keeping the CA and admitting throughout", func() {
		first.stop()
		// A certificate of 40 s, renewed 35 s before its end: a new one about every 5 s. The
		// Secret goes first, so that the replica issues one of these.
		Expect(k8sClient.Delete(ctx, webhookSecret(Default))).To(Succeed())
		first = startCertReplica(port, func(o *controllers.WebhookCertOptions) {
			o.Validity, o.RenewBefore, o.CheckInterval = 40*time.Second, 35*time.Second, time.Second
		})
		var ca []byte
		var served *x509.Certificate
		Eventually(func(g Gomega) {
			ca = injectedCA(g)
			served = servedCertificate(g, port, ca)
			g.Expect(time.Until(served.NotAfter)).To(BeNumerically("<", 41*time.Second))
		}).Should(Succeed())
		// The new CA reaches the API server's view first; then, over more than one renewal
		// under that CA, every request it sends is served.
		Eventually(admitThroughAPIServer).Should(Succeed())
		Consistently(admitThroughAPIServer, 8*time.Second, 500*time.Millisecond).Should(Succeed())
		next := servedCertificate(Default, port, ca)
		Expect(next.NotAfter).To(BeTemporally(">", served.NotAfter), "no renewal in 8 s")
		Expect(time.Until(next.NotAfter)).To(BeNumerically(">", 30*time.Second), "renewed late")
		Expect(injectedCA(Default)).To(Equal(ca), "renewing the serving certificate replaced the CA")
	})
})

// certificateDER is the first certificate of a PEM bundle.
func certificateDER(g Gomega, data []byte) []byte {
	block, _ := pem.Decode(data)
	g.Expect(block).NotTo(BeNil(), "no PEM in %q", data)
	return block.Bytes
}
