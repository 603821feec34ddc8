package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// probeNamespace is another team's namespace: its Gateways arrive one by one while the
// burst converges.
const probeNamespace = "probe"

// probes creates a Gateway in probeNamespace every interval until stop, and tells how long
// each took from its creation to Programmed, as one team sees it while another team's
// burst converges.
type probes struct {
	c        client.Client
	interval time.Duration
	mu       sync.Mutex
	created  map[string]time.Time
	took     map[string]time.Duration
	stop     chan struct{}
	done     sync.WaitGroup
	err      error
}

func startProbes(ctx context.Context, c client.Client, interval time.Duration) (*probes, error) {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNamespace}}); err != nil {
		return nil, err
	}
	p := &probes{c: c, interval: interval, created: map[string]time.Time{}, took: map[string]time.Duration{}, stop: make(chan struct{})}
	p.done.Add(2)
	go p.create(ctx)
	go p.watch(ctx)
	return p, nil
}

func (p *probes) create(ctx context.Context) {
	defer p.done.Done()
	ticker := time.NewTicker(p.interval)
	defer ticker.Stop()
	for i := 0; ; i++ {
		name := fmt.Sprintf("probe-%03d", i)
		at := time.Now()
		if err := p.c.Create(ctx, benchGateway(probeNamespace, name)); err != nil {
			p.fail(err)
			return
		}
		p.mu.Lock()
		p.created[name] = at
		p.mu.Unlock()
		select {
		case <-p.stop:
			return
		case <-ticker.C:
		}
	}
}

// watch polls the probe namespace every 100 ms: the latency is known to that precision.
func (p *probes) watch(ctx context.Context) {
	defer p.done.Done()
	stopping := false
	deadline := time.Time{}
	for {
		list := &gatewayv1.GatewayList{}
		if err := p.c.List(ctx, list, client.InNamespace(probeNamespace)); err != nil {
			p.fail(err)
			return
		}
		now := time.Now()
		p.mu.Lock()
		for _, gw := range list.Items {
			at, ok := p.created[gw.Name]
			if _, seen := p.took[gw.Name]; ok && !seen && meta.IsStatusConditionTrue(gw.Status.Conditions, "Programmed") {
				p.took[gw.Name] = now.Sub(at)
			}
		}
		pending := len(p.created) - len(p.took)
		p.mu.Unlock()
		select {
		case <-p.stop:
			if !stopping {
				stopping, deadline = true, now.Add(2*time.Minute)
			}
		default:
		}
		if stopping && pending == 0 {
			return
		}
		if stopping && now.After(deadline) {
			p.fail(fmt.Errorf("%d probe Gateways not Programmed 2 minutes after the burst", pending))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *probes) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// finish stops creating probes, waits for the last to be Programmed, and returns the
// latencies, sorted.
func (p *probes) finish() ([]time.Duration, error) {
	close(p.stop)
	p.done.Wait()
	if p.err != nil {
		return nil, p.err
	}
	out := make([]time.Duration, 0, len(p.took))
	for _, d := range p.took {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// percentile of sorted latencies, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(sorted) {
		rank = len(sorted) - 1
	}
	return sorted[rank]
}

// inOrder lists the latencies in the order the probes were created, for the log.
func (p *probes) inOrder() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]time.Duration, 0, len(p.took))
	for i := 0; ; i++ {
		d, ok := p.took[fmt.Sprintf("probe-%03d", i)]
		if !ok {
			return out
		}
		out = append(out, d.Round(10*time.Millisecond))
	}
}
