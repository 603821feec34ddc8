package controllers

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func request(namespace, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: name}}
}

// drain takes n requests in the order the queue hands them out, once all n are queued
// (the priority queue takes additions asynchronously).
func drain(t *testing.T, q workqueue.TypedRateLimitingInterface[reconcile.Request], n int) []string {
	t.Helper()
	NewWithT(t).Eventually(q.Len).WithTimeout(5 * time.Second).WithPolling(time.Millisecond).Should(Equal(n))
	var order []string
	for range n {
		req, _ := q.Get()
		order = append(order, req.String())
		q.Done(req)
	}
	return order
}

func TestNamespaceFairQueueServesALoneNamespaceBeforeABurst(t *testing.T) {
	q := newNamespaceFairQueue("test", workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	for i := range 5 {
		q.Add(request("burst", fmt.Sprint(i)))
	}
	q.Add(request("probe", "p"))
	got := drain(t, q, 6)
	want := []string{"burst/0", "probe/p", "burst/1", "burst/2", "burst/3", "burst/4"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("served %v, want %v: the probe waits for one Gateway of the busy namespace, not all", got, want)
	}

	// Done releases a namespace: its next request is first in line again.
	q.Add(request("probe", "q"))
	q.Add(request("burst", "5"))
	if got := drain(t, q, 2); fmt.Sprint(got) != "[probe/q burst/5]" {
		t.Errorf("after the burst was done, served %v, want FIFO again", got)
	}
}

func TestNamespaceFairQueueKeepsTheInitialListBehindNewWork(t *testing.T) {
	q := newNamespaceFairQueue("test", workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	fq := q.(priorityqueue.PriorityQueue[reconcile.Request])
	for i := range 3 {
		fq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(handler.LowPriority)}, request("restart", fmt.Sprint(i)))
	}
	// A namespace so busy that fairness would take it below the initial list's priority.
	for i := range 150 {
		q.Add(request("busy", fmt.Sprint(i)))
	}
	got := drain(t, q, 153)
	for i, r := range got[:150] {
		if r[:5] != "busy/" {
			t.Fatalf("request %d served was %s, before the busy namespace's new work was done: %v", i, r, got)
		}
	}
}
