package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

// countingRecorder counts the Events that reach it, by reason.
type countingRecorder struct{ reasons []string }

func (c *countingRecorder) Eventf(_, _ runtime.Object, _, reason, _, _ string, _ ...any) {
	c.reasons = append(c.reasons, reason)
}

func (c *countingRecorder) AnnotatedEventf(_, _ runtime.Object, _ map[string]string, _, reason, _, _ string, _ ...any) {
	c.reasons = append(c.reasons, reason)
}

func TestAtMostOneEventPerObjectReasonAndMessagePerWindow(t *testing.T) {
	next := &countingRecorder{}
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	d := newDedupRecorder(next, 10*time.Minute, clock)
	gw := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gw", UID: types.UID("1")}}
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "other", UID: types.UID("2")}}

	for i := range 100 {
		// A state flipping between two messages, as a write war makes it.
		d.Eventf(gw, nil, corev1.EventTypeWarning, "Contended", "Reconcile", "flip %d", i%2)
		clock.Step(time.Second)
	}
	d.Eventf(gw, nil, corev1.EventTypeWarning, "Invalid", "Reconcile", "another reason")
	d.Eventf(other, nil, corev1.EventTypeWarning, "Contended", "Reconcile", "flip 0")
	clock.Step(10 * time.Minute)
	d.AnnotatedEventf(gw, nil, nil, corev1.EventTypeWarning, "Contended", "Reconcile", "flip %d", 0)
	want := []string{"Contended", "Contended", "Invalid", "Contended", "Contended"}
	if len(next.reasons) != len(want) {
		t.Fatalf("%d Events passed (%v), want %v", len(next.reasons), next.reasons, want)
	}
}
