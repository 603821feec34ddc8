package controllers_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
	"github.com/kubegate/istio-gateway-operator/test/apicounter"
)

// replica is one replica of a revision's operator with leader election on, serving the
// admission webhooks on its own port.
type replica struct {
	requests    *apicounter.Counter
	webhookPort int
	elected     <-chan struct{}
	cancel      context.CancelFunc
	done        chan struct{}
}

const (
	haRevision      = "asm-1-30"
	haLeaseDuration = 4 * time.Second
)

func startReplica() *replica {
	GinkgoHelper()
	r := &replica{requests: apicounter.New(), done: make(chan struct{}), webhookPort: freePort()}
	host, _, certDir := cluster.WebhookServing()
	mgr, cancel := runInstance(haRevision, 30*time.Second, r.requests, r.done, func(o *ctrl.Options) {
		o.WebhookServer = webhook.NewServer(webhook.Options{Host: host, Port: r.webhookPort, CertDir: certDir})
		o.LeaderElection = true
		o.LeaderElectionID = "istio-gateway-operator-" + haRevision
		o.LeaderElectionNamespace = systemNamespace
		o.LeaseDuration = ptr.To(haLeaseDuration)
		o.RenewDeadline = ptr.To(3 * time.Second)
		o.RetryPeriod = ptr.To(500 * time.Millisecond)
		// A stopped leader does not release the Lease: the other replica must wait it
		// out, as after a crash.
		o.LeaderElectionReleaseOnCancel = false
	})
	r.elected, r.cancel = mgr.Elected(), cancel
	return r
}

func (r *replica) isLeader() bool {
	select {
	case <-r.elected:
		return true
	default:
		return false
	}
}

var _ = Describe("Two replicas with leader election", Ordered, func() {
	const ns = "leader-election"
	var first, second *replica

	AfterAll(func() {
		for _, r := range []*replica{first, second} {
			if r != nil {
				r.cancel()
				Eventually(r.done).Should(BeClosed())
			}
		}
		inst := &revisionInstance{revision: haRevision, cancel: func() {}, done: closedChannel()}
		inst.uninstall()
	})

	It("lets exactly one replica reconcile", func() {
		first, second = startReplica(), startReplica()
		Eventually(func() bool { return first.isLeader() || second.isLeader() }).Should(BeTrue())
		if second.isLeader() {
			first, second = second, first
		}
		convergedGateway(ns, "gw")
		Eventually(func(g Gomega) {
			g.Expect(deployment(g, ns, "gw-istio").Spec.Template.Spec.Containers[0].Image).To(Equal(proxyImageOf(haRevision)))
		}).Should(Succeed())
		Expect(second.isLeader()).To(BeFalse())
		Expect(second.requests.WritesIn(ns)).To(BeEmpty(), "the standby replica wrote")
	})

	It("serves the admission webhook from both replicas, the standby included", func() {
		Expect(second.isLeader()).To(BeFalse())
		for _, r := range []*replica{first, second} {
			Eventually(func(g Gomega) {
				response, err := review(r.webhookPort, controllers.ConfigMapWebhookPath, hostNetworkClassDefaults())
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(response.Allowed).To(BeFalse())
				g.Expect(response.Result.Message).To(ContainSubstring("spec.template.spec.hostNetwork is not allowed"))
			}).Should(Succeed(), "replica on port %d (leader: %t)", r.webhookPort, r.isLeader())
		}
	})

	It("hands over to the standby within the Lease duration when the leader stops, and converges pending work", func() {
		first.cancel()
		Eventually(first.done).Should(BeClosed())
		stopped := time.Now()
		// Work arrives while no replica leads.
		Expect(k8sClient.Create(ctx, httpGateway(ns, "gw-pending"))).To(Succeed())
		Eventually(second.isLeader, 2*haLeaseDuration+5*time.Second).Should(BeTrue())
		Expect(time.Since(stopped)).To(BeNumerically("<", 2*haLeaseDuration+5*time.Second))
		Eventually(func(g Gomega) {
			g.Expect(deployment(g, ns, "gw-pending-istio").Spec.Template.Spec.Containers[0].Image).To(Equal(proxyImageOf(haRevision)))
		}).Should(Succeed())
	})
})

// review sends one AdmissionReview to a replica's webhook server over TLS, as the API
// server does, trusting the CA envtest generated for the webhook.
func review(port int, path string, object *corev1.ConfigMap) (*admissionv1.AdmissionResponse, error) {
	raw, err := json.Marshal(object)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("standby-check"),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"},
			Namespace: object.Namespace, Name: object.Name,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cluster.Env.WebhookInstallOptions.LocalServingCAData)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer transport.CloseIdleConnections()
	httpClient := &http.Client{Timeout: 5 * time.Second, Transport: transport}
	host, _, _ := cluster.WebhookServing()
	resp, err := httpClient.Post(fmt.Sprintf("https://%s/%s", net.JoinHostPort(host, strconv.Itoa(port)), strings.TrimPrefix(path, "/")),
		"application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decoding the webhook's answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if out.Response == nil {
		return nil, fmt.Errorf("no response in the webhook's answer (HTTP %d)", resp.StatusCode)
	}
	return out.Response, nil
}

// hostNetworkClassDefaults is a class defaults ConfigMap the webhook must refuse.
func hostNetworkClassDefaults() *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "standby-check", Namespace: systemNamespace,
			Labels: map[string]string{v1alpha1.DefaultsForClassLabel: v1alpha1.DefaultGatewayClassName},
		},
		Data: map[string]string{"deployment": "spec:\n  template:\n    spec:\n      hostNetwork: true\n"},
	}
}

func freePort() int {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func closedChannel() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}
