package controllers_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
)

// snapshot records the identity and version of everything the operator generated and of
// the users' Gateways (spec) and ConfigMaps.
func snapshot() map[string]string {
	GinkgoHelper()
	out := map[string]string{}
	kinds, err := controllers.GeneratedListKinds(scheme)
	Expect(err).NotTo(HaveOccurred())
	for kind, gvk := range kinds {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk)
		Expect(k8sClient.List(ctx, list, client.MatchingLabels{v1alpha1.ManagedLabel: v1alpha1.ManagedLabelValue})).To(Succeed())
		for _, o := range list.Items {
			out[kind+" "+o.GetNamespace()+"/"+o.GetName()] = string(o.GetUID()) + " " + o.GetResourceVersion()
		}
	}
	gateways := &gatewayv1.GatewayList{}
	Expect(k8sClient.List(ctx, gateways)).To(Succeed())
	for _, gw := range gateways.Items {
		// Status is the operator's to write; metadata and spec are the user's.
		out["Gateway "+gw.Namespace+"/"+gw.Name] = string(gw.UID) + " generation " + strings.Repeat("I", int(gw.Generation)) + " labels " + labels.FormatLabels(gw.Labels)
	}
	configMaps := &corev1.ConfigMapList{}
	Expect(k8sClient.List(ctx, configMaps)).To(Succeed())
	for _, cm := range configMaps.Items {
		out["ConfigMap "+cm.Namespace+"/"+cm.Name] = string(cm.UID) + " " + cm.ResourceVersion
	}
	return out
}

var _ = Describe("An operator restart", func() {
	It("writes nothing at start-up when nothing changed, and never touches users' objects", func() {
		convergedGateway("restart", "gw")
		// Every Gateway in the suite has settled before the restart.
		Eventually(func(g Gomega) {
			operatorRequests.Reset()
			g.Consistently(func() map[string]int { return objectWrites(operatorRequests.Writes()) }, "3s").Should(BeEmpty())
		}, "60s").Should(Succeed())
		before := snapshot()

		stopManager()
		Eventually(managerDone).Should(BeClosed())
		operatorRequests.Reset()
		reconcilesBefore := reconcileCount("gateway")
		startManager()

		// The restarted operator reconciles every Gateway once it has settled ...
		gateways := &gatewayv1.GatewayList{}
		Expect(k8sClient.List(ctx, gateways)).To(Succeed())
		Eventually(func() float64 { return reconcileCount("gateway") - reconcilesBefore }, "60s").
			Should(BeNumerically(">=", countOfClass(gateways.Items, "istio")))
		// ... and writes nothing but its revision Lease heartbeat.
		Consistently(func() map[string]int { return objectWrites(operatorRequests.Writes()) }, "3s").Should(BeEmpty())
		Expect(snapshot()).To(Equal(before), "UIDs and versions of generated objects, and users' Gateways and ConfigMaps, are unchanged")
	})
})
