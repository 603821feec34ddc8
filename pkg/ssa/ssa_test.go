package ssa

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
)

func rendered() *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "gw-istio", Namespace: "default", ResourceVersion: "7", UID: "u"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "istio-proxy", Image: "proxy"}},
				Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			}},
		},
		Status: appsv1.DeploymentStatus{Replicas: 3},
	}
}

func TestApplyConfigurationSendsOnlyWhatTheOperatorHasOpinionsOn(t *testing.T) {
	ac, err := ApplyConfiguration[appsv1ac.DeploymentApplyConfiguration](rendered())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(ac)
	for _, unwanted := range []string{`"status"`, `"resourceVersion"`, `"uid"`, `"creationTimestamp"`} {
		if strings.Contains(string(js), unwanted) {
			t.Errorf("apply configuration sends %s: %s", unwanted, js)
		}
	}
	if !strings.Contains(string(js), `"emptyDir":{}`) {
		t.Errorf("an empty volume source must still be sent: %s", js)
	}
}

func TestEqualIgnoresEmptyObjectsTheServerDoesNotRecord(t *testing.T) {
	desired, _ := ApplyConfiguration[appsv1ac.DeploymentApplyConfiguration](rendered())
	owned, _ := ApplyConfiguration[appsv1ac.DeploymentApplyConfiguration](rendered())
	desired.Spec.WithStrategy(appsv1ac.DeploymentStrategy())
	same, err := Equal(desired, owned)
	if err != nil || !same {
		t.Fatalf("strategy: {} against no strategy: equal=%v err=%v", same, err)
	}
	owned.Spec.Template.Spec.Containers[0].WithImage("hand-edited")
	if same, _ := Equal(desired, owned); same {
		t.Fatal("a changed image must differ")
	}
	// The change an apply makes: the container list whole (a merge patch replaces lists),
	// with the image back to the rendered one, and nothing else.
	change := Change(owned, desired)
	if !strings.HasPrefix(change, `{"spec":{"template":{"spec":{"containers":[{`) || !strings.Contains(change, `"image":"proxy"`) ||
		strings.Contains(change, "hand-edited") || strings.Contains(change, `"selector"`) {
		t.Fatalf("change %s", change)
	}
	if same := Change(desired, desired); same != "{}" {
		t.Fatalf("change between equal configurations %s, want {}", same)
	}
}

func TestStatusWriterOf(t *testing.T) {
	entry := func(manager, subresource, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Subresource: subresource, FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	accepted := `{"f:status":{"f:conditions":{"k:{\"type\":\"Accepted\"}":{".":{},"f:message":{}}}}}`
	cases := []struct {
		name    string
		entries []metav1.ManagedFieldsEntry
		want    string
	}{
		{"only the operator", []metav1.ManagedFieldsEntry{entry("istio-gateway-operator", "status", accepted)}, ""},
		{"istiod took the condition", []metav1.ManagedFieldsEntry{
			entry("istio-gateway-operator", "status", `{"f:status":{"f:conditions":{"k:{\"type\":\"Programmed\"}":{}}}}`),
			entry("pilot-discovery", "status", accepted),
		}, "pilot-discovery"},
		{"another writer of another condition", []metav1.ManagedFieldsEntry{
			entry("pilot-discovery", "status", `{"f:status":{"f:conditions":{"k:{\"type\":\"ResolvedRefs\"}":{}}}}`),
		}, ""},
		{"the main resource, not the status", []metav1.ManagedFieldsEntry{entry("kubectl", "", accepted)}, ""},
		{"unreadable fields", []metav1.ManagedFieldsEntry{entry("pilot-discovery", "status", `{`)}, ""},
	}
	for _, c := range cases {
		if got := StatusWriterOf(c.entries, "istio-gateway-operator", "Accepted"); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
