package controllers

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubegate/istio-gateway-operator/pkg/render"
)

func TestEveryGeneratedKindIsPickedFromTheRendering(t *testing.T) {
	res := &render.Resources{
		ServiceAccount:          &corev1.ServiceAccount{},
		Deployment:              &appsv1.Deployment{},
		Service:                 &corev1.Service{},
		HorizontalPodAutoscaler: &autoscalingv2.HorizontalPodAutoscaler{},
		PodDisruptionBudget:     &policyv1.PodDisruptionBudget{},
	}
	// Every object field of the rendering has its kind in the registry, once.
	fields := reflect.TypeOf(*res)
	var objectFields int
	for i := range fields.NumField() {
		if fields.Field(i).Type.Kind() == reflect.Pointer {
			objectFields++
		}
	}
	if objectFields != len(generatedKinds) {
		t.Fatalf("render.Resources has %d objects, the registry %d kinds", objectFields, len(generatedKinds))
	}
	seen := map[reflect.Type]bool{}
	for _, d := range desiredObjects(res) {
		if d.object == nil {
			t.Errorf("%s: nothing picked from a full rendering", d.kind.name)
			continue
		}
		if reflect.TypeOf(d.object) != reflect.TypeOf(d.kind.newObject()) || seen[reflect.TypeOf(d.object)] {
			t.Errorf("%s: picked a %T", d.kind.name, d.object)
		}
		seen[reflect.TypeOf(d.object)] = true
	}
	// A kind the rendering leaves out must not exist: nil, not a typed nil pointer.
	for _, d := range desiredObjects(&render.Resources{}) {
		if d.object != nil {
			t.Errorf("%s: %#v picked from an empty rendering, want nil", d.kind.name, d.object)
		}
	}
	if got := len(GeneratedObjects()); got != len(generatedKinds) {
		t.Errorf("GeneratedObjects has %d objects, want %d", got, len(generatedKinds))
	}
}

func TestOwnedExtractsTheOperatorsFields(t *testing.T) {
	live := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "gw-istio", Namespace: "ns", ManagedFields: []metav1.ManagedFieldsEntry{{
			Manager: "istio-gateway-operator", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "apps/v1", FieldsType: "FieldsV1",
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"istio-proxy\"}":{".":{},"f:image":{},"f:name":{}}}}}}}`)},
		}}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "gw"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Image: "proxy"}}}},
		},
	}
	owned, err := deploymentKind.owned(live, "istio-gateway-operator")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(owned)
	if !strings.Contains(string(js), `"image":"proxy"`) || strings.Contains(string(js), "selector") {
		t.Fatalf("extracted %s, want the image and not the selector, which another manager owns", js)
	}
}
