package controllers

import (
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// namespaceFairQueue is controller-runtime's priority queue with one more rule: the more
// Gateways of a namespace are waiting, the lower the next one's priority. One team's burst
// of a thousand Gateways then queues behind itself, not in front of another team's single
// Gateway, which waits for at most one Gateway of each busy namespace. The priorities
// controller-runtime's handlers give stay in force above it: a Gateway from the initial
// list after a restart (handler.LowPriority) still waits for every new one.
type namespaceFairQueue struct {
	priorityqueue.PriorityQueue[reconcile.Request]

	mu sync.Mutex
	// waiting counts, per namespace, the requests added and not yet done.
	waiting map[string]int
	// queued are those requests.
	queued map[reconcile.Request]bool
}

// fairnessFloor bounds how far a busy namespace lowers its requests: above
// handler.LowPriority, so that new work of any namespace goes before the re-checks of a
// restart's initial list.
const fairnessFloor = handler.LowPriority + 1

// newNamespaceFairQueue is a controller's NewQueue.
func newNamespaceFairQueue(name string, rateLimiter workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return &namespaceFairQueue{
		PriorityQueue: priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) { o.RateLimiter = rateLimiter }),
		waiting:       map[string]int{},
		queued:        map[reconcile.Request]bool{},
	}
}

// AddWithOpts adds each request at its handler's priority lowered by how many requests of
// its namespace are waiting already.
func (q *namespaceFairQueue) AddWithOpts(o priorityqueue.AddOpts, requests ...reconcile.Request) {
	base := ptr.Deref(o.Priority, 0)
	for _, req := range requests {
		q.mu.Lock()
		ahead := q.waiting[req.Namespace]
		if !q.queued[req] {
			q.queued[req] = true
			q.waiting[req.Namespace]++
		}
		q.mu.Unlock()
		priority := base
		if base > fairnessFloor {
			priority = max(base-ahead, fairnessFloor)
		}
		opts := o
		opts.Priority = &priority
		q.PriorityQueue.AddWithOpts(opts, req)
	}
}

// Add, AddAfter and AddRateLimited go through AddWithOpts, so every path counts.
func (q *namespaceFairQueue) Add(req reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{}, req)
}

// AddAfter adds the request once duration has passed.
func (q *namespaceFairQueue) AddAfter(req reconcile.Request, duration time.Duration) {
	q.AddWithOpts(priorityqueue.AddOpts{After: duration}, req)
}

// AddRateLimited adds the request after its rate limiter's delay.
func (q *namespaceFairQueue) AddRateLimited(req reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{RateLimited: true}, req)
}

// Done ends a request's processing and its count against its namespace.
func (q *namespaceFairQueue) Done(req reconcile.Request) {
	q.mu.Lock()
	if q.queued[req] {
		delete(q.queued, req)
		if q.waiting[req.Namespace]--; q.waiting[req.Namespace] <= 0 {
			delete(q.waiting, req.Namespace)
		}
	}
	q.mu.Unlock()
	q.PriorityQueue.Done(req)
}
