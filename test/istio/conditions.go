//go:build istio

package istio

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// conditionHistory records, from watch events, every value each status condition took:
// the status and reason of each Gateway's, listener's, GatewayClass's and HTTPRoute
// parent's condition, in order, with the time it was seen.
type conditionHistory struct {
	mu     sync.Mutex
	values map[string][]seenValue
}

type seenValue struct {
	value string
	at    time.Time
}

func (h *conditionHistory) record(key string, conditions []metav1.Condition) {
	now := time.Now()
	for _, c := range conditions {
		k := key + " " + c.Type
		v := string(c.Status) + "/" + c.Reason
		seen := h.values[k]
		if len(seen) > 0 && seen[len(seen)-1].value == v {
			continue
		}
		h.values[k] = append(seen, seenValue{value: v, at: now})
	}
}

// watchConditions records the conditions of every Gateway, GatewayClass and HTTPRoute
// until ctx ends.
func watchConditions(ctx context.Context, c client.WithWatch) (*conditionHistory, error) {
	h := &conditionHistory{values: map[string][]seenValue{}}
	lists := []client.ObjectList{&gatewayv1.GatewayList{}, &gatewayv1.GatewayClassList{}, &gatewayv1.HTTPRouteList{}}
	for _, list := range lists {
		w, err := c.Watch(ctx, list)
		if err != nil {
			return nil, fmt.Errorf("watching %T: %w", list, err)
		}
		go func() {
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case event, ok := <-w.ResultChan():
					if !ok {
						return
					}
					if event.Type == watch.Added || event.Type == watch.Modified {
						h.observe(event.Object)
					}
				}
			}
		}()
	}
	return h, nil
}

func (h *conditionHistory) observe(o any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch o := o.(type) {
	case *gatewayv1.Gateway:
		key := "Gateway " + o.Namespace + "/" + o.Name
		h.record(key, o.Status.Conditions)
		for _, l := range o.Status.Listeners {
			h.record(key+" listener "+string(l.Name), l.Conditions)
		}
	case *gatewayv1.GatewayClass:
		h.record("GatewayClass "+o.Name, o.Status.Conditions)
	case *gatewayv1.HTTPRoute:
		for _, p := range o.Status.Parents {
			h.record(fmt.Sprintf("HTTPRoute %s/%s parent %s (%s)", o.Namespace, o.Name, p.ParentRef.Name, p.ControllerName), p.Conditions)
		}
	}
}

// flips are the conditions that went back to a value they had left (True, False, True),
// each with its history.
func (h *conditionHistory) flips() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for key, seen := range h.values {
		var values []string
		for _, s := range seen {
			if slices.Contains(values, s.value) {
				out = append(out, key+": "+h.describe(seen))
				break
			}
			values = append(values, s.value)
		}
	}
	sort.Strings(out)
	return out
}

// changedSince are the conditions that took a new value at or after t.
func (h *conditionHistory) changedSince(t time.Time) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for key, seen := range h.values {
		if !seen[len(seen)-1].at.Before(t) && len(seen) > 1 {
			out = append(out, key+": "+h.describe(seen))
		}
	}
	sort.Strings(out)
	return out
}

func (h *conditionHistory) describe(seen []seenValue) string {
	var parts []string
	for _, s := range seen {
		parts = append(parts, s.value+" at "+s.at.Format("15:04:05.000"))
	}
	return strings.Join(parts, " -> ")
}
