package controllers

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCachedMetadataKeepsOnlyWhatTheOperatorReads(t *testing.T) {
	full := func() *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Name: "tls", Namespace: "apps", ResourceVersion: "42", UID: "u-1", CreationTimestamp: metav1.Now(),
			Labels: map[string]string{"gateway.istio.io/defaults-for-class": "istio"}, Annotations: map[string]string{"a": "b"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}, Finalizers: []string{"f"},
			OwnerReferences: []metav1.OwnerReference{{Name: "o"}},
		}}
	}
	secret, err := trimToChangeMarker(full())
	if err != nil {
		t.Fatal(err)
	}
	if got := secret.(*metav1.PartialObjectMetadata).ObjectMeta; !reflect.DeepEqual(got, metav1.ObjectMeta{Name: "tls", Namespace: "apps", ResourceVersion: "42"}) {
		t.Errorf("a cached Secret keeps %+v, want only its name, namespace and resourceVersion", got)
	}
	labelled := full()
	labelled.Labels["app"] = "web"
	configMap, err := trimConfigMap(labelled)
	if err != nil {
		t.Fatal(err)
	}
	got := configMap.(*metav1.PartialObjectMetadata).ObjectMeta
	want := metav1.ObjectMeta{Name: "tls", Namespace: "apps", ResourceVersion: "42", CreationTimestamp: labelled.CreationTimestamp,
		Labels: map[string]string{"gateway.istio.io/defaults-for-class": "istio"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("a cached ConfigMap keeps %+v, want what class defaults resolution reads: %+v", got, want)
	}
	plain := full()
	plain.Labels = map[string]string{"app": "web"}
	configMap, err = trimConfigMap(plain)
	if err != nil {
		t.Fatal(err)
	}
	if labels := configMap.(*metav1.PartialObjectMetadata).Labels; labels != nil {
		t.Errorf("an unlabelled ConfigMap keeps labels %v", labels)
	}
	namespace, err := trimToIdentity(full())
	if err != nil {
		t.Fatal(err)
	}
	if ns := namespace.(*metav1.PartialObjectMetadata); len(ns.Labels) != 1 || ns.Annotations != nil || ns.ManagedFields != nil {
		t.Errorf("a cached Namespace keeps %+v, want its labels and identity only", ns.ObjectMeta)
	}
}
