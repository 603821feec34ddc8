package controllers_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// selfSignedTLS returns a PEM certificate and key for host, as a kubernetes.io/tls Secret
// holds them.
func selfSignedTLS(host string) (certPEM, keyPEM []byte) {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	keyDER, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func tlsSecret(namespace, name string, crt, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}
}

func httpsGateway(namespace, name string, ref gatewayv1.SecretObjectReference) *gatewayv1.Gateway {
	gw := httpGateway(namespace, name)
	gw.Spec.Listeners = []gatewayv1.Listener{{
		Name: "https", Port: 443, Protocol: gatewayv1.HTTPSProtocolType,
		TLS: &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{ref}},
	}}
	return gw
}

// listenerCondition returns one listener's condition of a type, or an empty one.
func listenerCondition(g Gomega, namespace, name string, listener gatewayv1.SectionName, conditionType gatewayv1.ListenerConditionType) metav1.Condition {
	gw := gateway(g, namespace, name)
	for _, l := range gw.Status.Listeners {
		if l.Name == listener {
			for _, c := range l.Conditions {
				if c.Type == string(conditionType) {
					g.Expect(c.ObservedGeneration).To(Equal(gw.Generation), "listener %s %s is stale", listener, conditionType)
					return c
				}
			}
		}
	}
	return metav1.Condition{}
}

var _ = Describe("Listener validation", func() {
	const ns, certs = "listeners", "listener-certs"
	BeforeEach(func() {
		createNamespace(ns)
		createNamespace(certs)
	})

	It("resolves a certificate Secret when it appears, and reports it malformed when it does not parse", func() {
		gw := httpsGateway(ns, "https-later", gatewayv1.SecretObjectReference{Name: "later"})
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, gw)).To(Succeed()) })
		Eventually(func(g Gomega) {
			c := listenerCondition(g, ns, "https-later", "https", gatewayv1.ListenerConditionResolvedRefs)
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "InvalidCertificateRef", 1))
			g.Expect(c.Message).To(Equal("Secret listeners/later does not exist"))
			g.Expect(listenerCondition(g, ns, "https-later", "https", gatewayv1.ListenerConditionProgrammed).Status).To(Equal(metav1.ConditionFalse))
			g.Expect(condition(gateway(g, ns, "https-later"), "Accepted").Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())

		crt, key := selfSignedTLS("example.com")
		secret := tlsSecret(ns, "later", []byte("Hello world\n"), []byte("Hello world\n"))
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())
		Eventually(func(g Gomega) {
			c := listenerCondition(g, ns, "https-later", "https", gatewayv1.ListenerConditionResolvedRefs)
			g.Expect(c.Reason).To(Equal("InvalidCertificateRef"))
			g.Expect(c.Message).To(HavePrefix("Secret listeners/later is not a usable TLS certificate: tls: failed to find any PEM data"))
		}).Should(Succeed())

		secret.Data = map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(listenerCondition(g, ns, "https-later", "https", gatewayv1.ListenerConditionResolvedRefs)).To(haveCondition(metav1.ConditionTrue, "ResolvedRefs", 1))
		}).Should(Succeed())
	})

	It("names the type of a Secret that is not a kubernetes.io/tls Secret, which it does not cache", func() {
		crt, key := selfSignedTLS("example.com")
		opaque := tlsSecret(ns, "opaque", crt, key)
		opaque.Type = corev1.SecretTypeOpaque
		Expect(k8sClient.Create(ctx, opaque)).To(Succeed())
		gw := httpsGateway(ns, "https-opaque", gatewayv1.SecretObjectReference{Name: "opaque"})
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, gw)).To(Succeed()) })
		Eventually(func(g Gomega) {
			c := listenerCondition(g, ns, "https-opaque", "https", gatewayv1.ListenerConditionResolvedRefs)
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "InvalidCertificateRef", 1))
			g.Expect(c.Message).To(Equal("Secret listeners/opaque is not a usable TLS certificate: it is of type Opaque; certificateRefs need a Secret of type kubernetes.io/tls"))
		}).Should(Succeed())
	})

	It("refuses a Secret in another namespace until a ReferenceGrant allows it, and again when the grant goes", func() {
		crt, key := selfSignedTLS("shared.example.com")
		Expect(k8sClient.Create(ctx, tlsSecret(certs, "shared", crt, key))).To(Succeed())
		gw := httpsGateway(ns, "https-shared", gatewayv1.SecretObjectReference{Name: "shared", Namespace: ptr.To(gatewayv1.Namespace(certs))})
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, gw)).To(Succeed()) })
		Eventually(func(g Gomega) {
			c := listenerCondition(g, ns, "https-shared", "https", gatewayv1.ListenerConditionResolvedRefs)
			g.Expect(c).To(haveCondition(metav1.ConditionFalse, "RefNotPermitted", 1))
			g.Expect(c.Message).To(ContainSubstring("no ReferenceGrant in listener-certs allows Gateways from listeners"))
		}).Should(Succeed())

		grant := &gatewayv1.ReferenceGrant{
			ObjectMeta: metav1.ObjectMeta{Name: "gateways-may-use-shared", Namespace: certs},
			Spec: gatewayv1.ReferenceGrantSpec{
				From: []gatewayv1.ReferenceGrantFrom{{Group: gatewayv1.GroupName, Kind: "Gateway", Namespace: ns}},
				To:   []gatewayv1.ReferenceGrantTo{{Group: "", Kind: "Secret", Name: ptr.To(gatewayv1.ObjectName("shared"))}},
			},
		}
		Expect(k8sClient.Create(ctx, grant)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(listenerCondition(g, ns, "https-shared", "https", gatewayv1.ListenerConditionResolvedRefs)).To(haveCondition(metav1.ConditionTrue, "ResolvedRefs", 1))
		}).Should(Succeed())

		Expect(k8sClient.Delete(ctx, grant)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(listenerCondition(g, ns, "https-shared", "https", gatewayv1.ListenerConditionResolvedRefs).Reason).To(Equal("RefNotPermitted"))
		}).Should(Succeed())
	})

	It("gives every listener the reason the specification names for what is wrong with it, and serves the rest", func() {
		gw := httpGateway(ns, "reasons")
		passthrough := &gatewayv1.ListenerTLSConfig{Mode: ptr.To(gatewayv1.TLSModePassthrough)}
		gw.Spec.Listeners = []gatewayv1.Listener{
			{Name: "http", Port: 8080, Protocol: gatewayv1.HTTPProtocolType},
			{Name: "http-on-80", Port: 80, Protocol: gatewayv1.HTTPProtocolType},
			{Name: "tcp-on-80", Port: 80, Protocol: gatewayv1.TCPProtocolType},
			{Name: "on-the-status-port", Port: 15021, Protocol: gatewayv1.HTTPProtocolType},
			{Name: "tls-terminate", Port: 8443, Protocol: gatewayv1.TLSProtocolType,
				TLS: &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "a"}}}},
			{Name: "tcp-kind-on-http", Port: 9080, Protocol: gatewayv1.HTTPProtocolType,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Kinds: []gatewayv1.RouteGroupKind{{Kind: "TCPRoute"}}}},
			{Name: "tls-a", Port: 443, Protocol: gatewayv1.TLSProtocolType, Hostname: ptr.To(gatewayv1.Hostname("a.example.com")), TLS: passthrough},
			{Name: "https-a", Port: 443, Protocol: gatewayv1.HTTPSProtocolType, Hostname: ptr.To(gatewayv1.Hostname("a.example.com")),
				TLS: &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "a"}}}},
		}
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, gw)).To(Succeed()) })
		want := map[gatewayv1.SectionName]map[gatewayv1.ListenerConditionType]string{
			"http":               {"Accepted": "True/Accepted", "ResolvedRefs": "True/ResolvedRefs", "Conflicted": "False/NoConflicts"},
			"http-on-80":         {"Accepted": "False/ProtocolConflict", "Conflicted": "True/ProtocolConflict"},
			"tcp-on-80":          {"Accepted": "False/ProtocolConflict", "Conflicted": "True/ProtocolConflict"},
			"on-the-status-port": {"Accepted": "False/PortUnavailable", "Programmed": "False/Invalid"},
			"tls-terminate":      {"Accepted": "False/UnsupportedValue"},
			"tcp-kind-on-http":   {"Accepted": "True/Accepted", "ResolvedRefs": "False/InvalidRouteKinds", "Programmed": "False/Invalid"},
			"tls-a":              {"Accepted": "False/HostnameConflict", "Conflicted": "True/HostnameConflict"},
			"https-a":            {"Accepted": "False/HostnameConflict", "Conflicted": "True/HostnameConflict"},
		}
		Eventually(func(g Gomega) {
			for listener, conditions := range want {
				for typ, expected := range conditions {
					c := listenerCondition(g, ns, "reasons", listener, typ)
					g.Expect(string(c.Status)+"/"+c.Reason).To(Equal(expected), "listener %s %s: %s", listener, typ, c.Message)
				}
			}
			accepted := condition(gateway(g, ns, "reasons"), "Accepted")
			g.Expect(accepted).To(haveCondition(metav1.ConditionTrue, "ListenersNotValid", 1))
			// Only the listeners that can be served get a Service port, beside the status port.
			var ports []int32
			for _, p := range service(g, ns, "reasons-istio").Spec.Ports {
				ports = append(ports, p.Port)
			}
			g.Expect(ports).To(ConsistOf(int32(15021), int32(8080), int32(9080)))
		}).Should(Succeed())
	})

	It("does not accept a Gateway none of whose listeners can be served, and names them", func() {
		gw := httpGateway(ns, "unsupported")
		gw.Spec.Listeners = []gatewayv1.Listener{
			{Name: "invalid", Port: 1111, Protocol: "INVALID"},
			{Name: "tls-terminate", Port: 8443, Protocol: gatewayv1.TLSProtocolType,
				TLS: &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "x"}}}},
		}
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, gw)).To(Succeed()) })
		Eventually(func(g Gomega) {
			accepted := condition(gateway(g, ns, "unsupported"), "Accepted")
			g.Expect(accepted).To(haveCondition(metav1.ConditionFalse, "ListenersNotValid", 1))
			g.Expect(accepted.Message).To(Equal("No listener is accepted (see their conditions): invalid, tls-terminate"))
			g.Expect(listenerCondition(g, ns, "unsupported", "invalid", gatewayv1.ListenerConditionAccepted).Reason).To(Equal("UnsupportedProtocol"))
			g.Expect(listenerCondition(g, ns, "unsupported", "tls-terminate", gatewayv1.ListenerConditionAccepted).Reason).To(Equal("UnsupportedValue"))
		}).Should(Succeed())
	})
})

var _ = Describe("Static addresses", func() {
	const ns = "addresses"
	BeforeEach(func() { createNamespace(ns) })

	It("refuses an address type it cannot request, then reports a second address unusable, then requests the one left", func() {
		gw := httpGateway(ns, "static")
		gw.Spec.Addresses = []gatewayv1.GatewaySpecAddress{
			{Type: ptr.To(gatewayv1.AddressType("test/fake-invalid-type")), Value: "fake"},
			{Type: ptr.To(gatewayv1.IPAddressType), Value: "198.51.100.7"},
			{Type: ptr.To(gatewayv1.IPAddressType), Value: "203.0.113.40"},
		}
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, gw)).To(Succeed()) })
		Eventually(func(g Gomega) {
			accepted := condition(gateway(g, ns, "static"), "Accepted")
			g.Expect(accepted).To(haveCondition(metav1.ConditionFalse, "UnsupportedAddress", 1))
			g.Expect(accepted.Message).To(ContainSubstring(`"fake" of type test/fake-invalid-type (only IPAddress is supported)`))
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key(ns, "static-istio"), &corev1.Service{})).NotTo(Succeed())
		}).Should(Succeed())

		updateGateway(ns, "static", func(gw *gatewayv1.Gateway) { gw.Spec.Addresses = gw.Spec.Addresses[1:] })
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "static")
			g.Expect(condition(gw, "Accepted")).To(haveCondition(metav1.ConditionTrue, "Accepted", 2))
			programmed := condition(gw, "Programmed")
			g.Expect(programmed).To(haveCondition(metav1.ConditionFalse, "AddressNotUsable", 2))
			g.Expect(programmed.Message).To(ContainSubstring("spec.addresses 203.0.113.40 cannot be used"))
			g.Expect(service(g, ns, "static-istio").Spec.LoadBalancerIP).To(Equal("198.51.100.7"))
		}).Should(Succeed())

		updateGateway(ns, "static", func(gw *gatewayv1.Gateway) { gw.Spec.Addresses = gw.Spec.Addresses[1:] })
		Eventually(func(g Gomega) {
			g.Expect(service(g, ns, "static-istio").Spec.LoadBalancerIP).To(Equal("203.0.113.40"))
		}).Should(Succeed())
		setLoadBalancerIP(ns, "static-istio", "203.0.113.40")
		Eventually(func(g Gomega) {
			gw := gateway(g, ns, "static")
			g.Expect(condition(gw, "Programmed")).To(haveCondition(metav1.ConditionTrue, "Programmed", 3))
			g.Expect(gw.Status.Addresses).To(HaveLen(1))
			g.Expect(gw.Status.Addresses[0].Value).To(Equal("203.0.113.40"))
		}).Should(Succeed())
	})
})

var _ = Describe("HTTPRoute status, where no istiod writes it", func() {
	const ns = "routes"
	BeforeEach(func() { createNamespace(ns) })

	parentConditions := func(g Gomega, name string) map[string]string {
		route := &gatewayv1.HTTPRoute{}
		g.Expect(k8sClient.Get(ctx, key(ns, name), route)).To(Succeed())
		g.Expect(route.Status.Parents).To(HaveLen(1))
		p := route.Status.Parents[0]
		g.Expect(string(p.ControllerName)).To(Equal("istio.io/gateway-controller"))
		out := map[string]string{}
		for _, c := range p.Conditions {
			g.Expect(c.ObservedGeneration).To(Equal(route.Generation))
			out[c.Type] = string(c.Status) + "/" + c.Reason
		}
		return out
	}

	It("reports each parent's Accepted and ResolvedRefs, and follows the backend and the listener", func() {
		gw := httpGateway(ns, "gw")
		gw.Spec.Listeners[0].Hostname = ptr.To(gatewayv1.Hostname("foo.example.com"))
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, gw)).To(Succeed()) })
		route := &gatewayv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: gatewayv1.HTTPRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gw"}}},
				Hostnames:       []gatewayv1.Hostname{"bar.example.com"},
				Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
					BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: ptr.To(gatewayv1.PortNumber(8080))}}}}}},
			},
		}
		Expect(k8sClient.Create(ctx, route)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, route)).To(Succeed()) })
		Eventually(func(g Gomega) {
			g.Expect(parentConditions(g, "web")).To(Equal(map[string]string{"Accepted": "False/NoMatchingListenerHostname", "ResolvedRefs": "False/BackendNotFound"}))
		}).Should(Succeed())

		By("accepting it once a hostname matches")
		Eventually(func(g Gomega) {
			fresh := &gatewayv1.HTTPRoute{}
			g.Expect(k8sClient.Get(ctx, key(ns, "web"), fresh)).To(Succeed())
			fresh.Spec.Hostnames = []gatewayv1.Hostname{"foo.example.com"}
			g.Expect(k8sClient.Update(ctx, fresh)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(parentConditions(g, "web")).To(HaveKeyWithValue("Accepted", "True/Accepted"))
			g.Expect(gateway(g, ns, "gw").Status.Listeners).To(ContainElement(HaveField("AttachedRoutes", BeEquivalentTo(1))))
		}).Should(Succeed())

		By("resolving the backend once its Service exists (after a route change brings it back)")
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}, Selector: map[string]string{"app": "web"}}}
		Expect(k8sClient.Create(ctx, svc)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, svc)).To(Succeed()) })
		Eventually(func(g Gomega) {
			fresh := &gatewayv1.HTTPRoute{}
			g.Expect(k8sClient.Get(ctx, key(ns, "web"), fresh)).To(Succeed())
			fresh.Spec.Rules[0].BackendRefs[0].Weight = ptr.To(int32(2))
			g.Expect(k8sClient.Update(ctx, fresh)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(parentConditions(g, "web")).To(Equal(map[string]string{"Accepted": "True/Accepted", "ResolvedRefs": "True/ResolvedRefs"}))
		}).Should(Succeed())

		By("following the listener when the Gateway changes")
		updateGateway(ns, "gw", func(gw *gatewayv1.Gateway) {
			gw.Spec.Listeners[0].Hostname = ptr.To(gatewayv1.Hostname("other.example.com"))
		})
		Eventually(func(g Gomega) {
			g.Expect(parentConditions(g, "web")).To(HaveKeyWithValue("Accepted", "False/NoMatchingListenerHostname"))
		}).Should(Succeed())
	})
})
