package controllers_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The rules every spec in this suite follows, because each one broken has cost a flaky or
// empty spec before:
//   - wait with Eventually, never with a sleep;
//   - "never" and "stays" are claims about what a reconcile did: first see, with Eventually,
//     the reconcile that could break them (holdsAfter), then watch with Consistently;
//   - clean up with DeferCleanup, not with a final It: in an Ordered container register it
//     in BeforeAll (it runs after the last spec), in a spec for that spec alone;
//   - assert how many conditions, writes or Events there are, not only that one is there;
//   - a spec must be able to fail: check a value that the behaviour under test changes, or
//     a counter (generation, resourceVersion, requests) that shows it did not.
var ctx = context.Background()

// holdsAfter waits until reconciled shows that the operator has acted on the change the
// spec made, then checks that holds stays true: a Consistently before that point would
// pass on a reconcile that has not happened yet.
func holdsAfter(reconciled, holds func(g Gomega)) {
	GinkgoHelper()
	Eventually(reconciled).Should(Succeed(), "the operator has not acted on the change yet")
	Consistently(holds).Should(Succeed())
}

// webhookConfigurationName is the name config/webhook/manifests.yaml gives the webhooks.
const webhookConfigurationName = "validating-webhook-configuration"

func key(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

func createNamespace(name string) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, ns))).To(Succeed())
}

// httpGateway is the walkthrough's Gateway: one HTTP listener on port 80 admitting routes
// from its own namespace.
func httpGateway(namespace, name string) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: "istio",
			Listeners: []gatewayv1.Listener{{
				Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromSame)}},
			}},
		},
	}
}

func parametersRef(name string) *gatewayv1.GatewayInfrastructure {
	return &gatewayv1.GatewayInfrastructure{ParametersRef: &gatewayv1.LocalParametersReference{Group: "", Kind: "ConfigMap", Name: name}}
}

func configMap(namespace, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: data}
}

// get reads one object, failing g when it cannot.
func get[T client.Object](g Gomega, namespace, name string, obj T) T {
	g.ExpectWithOffset(2, k8sClient.Get(ctx, key(namespace, name), obj)).To(Succeed())
	return obj
}

func deployment(g Gomega, namespace, name string) *appsv1.Deployment {
	return get(g, namespace, name, &appsv1.Deployment{})
}

func service(g Gomega, namespace, name string) *corev1.Service {
	return get(g, namespace, name, &corev1.Service{})
}

func hpa(g Gomega, namespace, name string) *autoscalingv2.HorizontalPodAutoscaler {
	return get(g, namespace, name, &autoscalingv2.HorizontalPodAutoscaler{})
}

func pdb(g Gomega, namespace, name string) *policyv1.PodDisruptionBudget {
	return get(g, namespace, name, &policyv1.PodDisruptionBudget{})
}

func gateway(g Gomega, namespace, name string) *gatewayv1.Gateway {
	return get(g, namespace, name, &gatewayv1.Gateway{})
}

// condition returns the Gateway's condition of a type, or an empty one.
func condition(gw *gatewayv1.Gateway, conditionType string) metav1.Condition {
	if c := meta.FindStatusCondition(gw.Status.Conditions, conditionType); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// haveCondition matches a condition by status and reason, stamped with the generation.
func haveCondition(status metav1.ConditionStatus, reason string, generation int64) OmegaMatcher {
	return And(
		HaveField("Status", status),
		HaveField("Reason", reason),
		HaveField("ObservedGeneration", generation),
	)
}

// eventsFor lists the Events the operator recorded about an object.
func eventsFor(g Gomega, namespace, name string) []eventsv1.Event {
	list := &eventsv1.EventList{}
	g.ExpectWithOffset(1, k8sClient.List(ctx, list, client.InNamespace(namespace))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// eventNotes are the notes of the Events the operator recorded about an object.
func eventNotes(g Gomega, namespace, name string) []string {
	var notes []string
	for _, e := range eventsFor(g, namespace, name) {
		notes = append(notes, e.Note)
	}
	return notes
}

// setLoadBalancerIP plays the cloud controller: it publishes the Service's external address.
func setLoadBalancerIP(namespace, name, ip string) {
	Eventually(func(g Gomega) {
		svc := service(g, namespace, name)
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		g.Expect(k8sClient.Status().Update(ctx, svc)).To(Succeed())
	}).Should(Succeed())
}

func updateConfigMap(namespace, name string, data map[string]string) {
	Eventually(func(g Gomega) {
		cm := &corev1.ConfigMap{}
		g.Expect(k8sClient.Get(ctx, key(namespace, name), cm)).To(Succeed())
		cm.Data = data
		g.Expect(k8sClient.Update(ctx, cm)).To(Succeed())
	}).Should(Succeed())
}

func updateGateway(namespace, name string, mutate func(*gatewayv1.Gateway)) {
	Eventually(func(g Gomega) {
		gw := gateway(g, namespace, name)
		mutate(gw)
		g.Expect(k8sClient.Update(ctx, gw)).To(Succeed())
	}).Should(Succeed())
}

// webhooksOff removes the webhook configuration for the specs of a container and restores
// it afterwards: it stands for an operator outage or objects created before the webhook,
// the cases the reconciler's own filtering exists for.
func webhooksOff() {
	var saved *admissionregistrationv1.ValidatingWebhookConfiguration
	BeforeAll(func() {
		saved = &admissionregistrationv1.ValidatingWebhookConfiguration{}
		Expect(k8sClient.Get(ctx, key("", webhookConfigurationName), saved)).To(Succeed())
		Expect(k8sClient.Delete(ctx, saved)).To(Succeed())
	})
	AfterAll(func() {
		restored := saved.DeepCopy()
		restored.ResourceVersion, restored.UID = "", ""
		Expect(k8sClient.Create(ctx, restored)).To(Succeed())
	})
}

func classDefaultsMeta() metav1.ObjectMeta {
	cm := &corev1.ConfigMap{}
	Expect(k8sClient.Get(ctx, key(systemNamespace, "istio-gateway-class-defaults"), cm)).To(Succeed())
	return cm.ObjectMeta
}
