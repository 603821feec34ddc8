package controllers

import (
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// EventWindow is how long an Event about one object silences the same Event (reason and
// message) again: a state that flips (a write war, an outage that comes and goes) is told
// once per window, not once per flip, while a new problem is still told at once.
const EventWindow = 10 * time.Minute

// dedupRecorder passes at most one Event per object, reason and message per window to the
// next recorder. What it has passed is kept in apimachinery's expiring cache, which drops
// each entry when its window ends.
type dedupRecorder struct {
	next   recorder.EventRecorder
	window time.Duration

	// mu makes "not seen within the window, so record it" one step across reconcilers.
	mu     sync.Mutex
	passed *cache.Expiring
}

type eventKey struct {
	regarding, reason, note string
}

func newDedupRecorder(next recorder.EventRecorder, window time.Duration, clock clock.Clock) *dedupRecorder {
	return &dedupRecorder{next: next, window: window, passed: cache.NewExpiringWithClock(clock)}
}

// Eventf records the Event unless the same one about the same object was recorded within
// the window.
func (d *dedupRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if d.admit(regarding, reason, fmt.Sprintf(note, args...)) {
		d.next.Eventf(regarding, related, eventtype, reason, action, note, args...)
	}
}

// AnnotatedEventf is Eventf with annotations.
func (d *dedupRecorder) AnnotatedEventf(regarding, related runtime.Object, annotations map[string]string, eventtype, reason, action, note string, args ...any) {
	if d.admit(regarding, reason, fmt.Sprintf(note, args...)) {
		d.next.AnnotatedEventf(regarding, related, annotations, eventtype, reason, action, note, args...)
	}
}

func (d *dedupRecorder) admit(regarding runtime.Object, reason, note string) bool {
	key := eventKey{reason: reason, note: note}
	if accessor, err := meta.Accessor(regarding); err == nil {
		key.regarding = string(accessor.GetUID()) + "/" + accessor.GetNamespace() + "/" + accessor.GetName()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, seen := d.passed.Get(key); seen {
		return false
	}
	d.passed.Set(key, struct{}{}, d.window)
	return true
}
