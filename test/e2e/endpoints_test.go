//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// readySample is the number of ready endpoints behind a Service at one moment.
type readySample struct {
	at    time.Time
	ready int
}

// endpointWatch records, from the EndpointSlice controller's own output, how many ready
// endpoints a Service has over time: what a load balancer in front of it could send to.
type endpointWatch struct {
	mu      sync.Mutex
	samples []readySample
	stop    chan struct{}
}

// watchReadyEndpoints starts recording the ready endpoints of Service namespace/name.
func watchReadyEndpoints(cfg *rest.Config, namespace, name string) (*endpointWatch, error) {
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a clientset: %w", err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = discoveryv1.LabelServiceName + "=" + name }))
	informer := factory.Discovery().V1().EndpointSlices().Informer()
	w := &endpointWatch{stop: make(chan struct{})}
	record := func(any) {
		ready := 0
		for _, o := range informer.GetStore().List() {
			for _, e := range o.(*discoveryv1.EndpointSlice).Endpoints {
				// An unset ready condition means ready (the EndpointSlice API).
				if e.Conditions.Ready == nil || *e.Conditions.Ready {
					ready++
				}
			}
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if n := len(w.samples); n == 0 || w.samples[n-1].ready != ready {
			w.samples = append(w.samples, readySample{at: time.Now(), ready: ready})
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    record,
		UpdateFunc: func(_, o any) { record(o) },
		DeleteFunc: record,
	}); err != nil {
		return nil, fmt.Errorf("watching EndpointSlices: %w", err)
	}
	factory.Start(w.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		close(w.stop)
		return nil, fmt.Errorf("EndpointSlices of Service %s/%s did not sync", namespace, name)
	}
	return w, nil
}

// Stop ends the watch.
func (w *endpointWatch) Stop() { close(w.stop) }

// Now is the number of ready endpoints last seen, or -1 before any.
func (w *endpointWatch) Now() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.samples) == 0 {
		return -1
	}
	return w.samples[len(w.samples)-1].ready
}

// window is what the watch saw between two moments: the count in force at from, then
// every change until to.
type window struct {
	samples  []readySample
	from, to time.Time
}

// Between returns the window [from, to].
func (w *endpointWatch) Between(from, to time.Time) window {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := window{from: from, to: to}
	for i, s := range w.samples {
		switch {
		case s.at.After(to):
		case !s.at.After(from):
			// The count in force when the window opens.
			if i+1 == len(w.samples) || w.samples[i+1].at.After(from) {
				out.samples = append(out.samples, readySample{at: from, ready: s.ready})
			}
		default:
			out.samples = append(out.samples, s)
		}
	}
	return out
}

// Min is the fewest ready endpoints in the window.
func (w window) Min() int {
	least := -1
	for _, s := range w.samples {
		if least < 0 || s.ready < least {
			least = s.ready
		}
	}
	return least
}

// Below is how long the window spent with fewer than n ready endpoints.
func (w window) Below(n int) time.Duration {
	var total time.Duration
	for i, s := range w.samples {
		end := w.to
		if i+1 < len(w.samples) {
			end = w.samples[i+1].at
		}
		if s.ready < n {
			total += end.Sub(s.at)
		}
	}
	return total
}

// String is the timeline, one change a line, in seconds from the window's start.
func (w window) String() string {
	var b strings.Builder
	for _, s := range w.samples {
		fmt.Fprintf(&b, "  +%5.1fs  %d ready\n", s.at.Sub(w.from).Seconds(), s.ready)
	}
	fmt.Fprintf(&b, "  +%5.1fs  (end)\n", w.to.Sub(w.from).Seconds())
	return b.String()
}
