// Package contention tells a write war from ordinary drift: when another writer keeps
// changing back what the operator applies, each re-apply is answered by another change,
// forever. The operator re-applies a few times (drift from a hand edit is repaired), then
// stops and reports, until the user changes something. It is pure: the caller passes the
// clock.
package contention

import (
	"sync"
	"time"
)

// Defaults: three re-applies of one object within ten minutes is a war, not drift.
const (
	DefaultLimit  = 3
	DefaultWindow = 10 * time.Minute
)

// Guard counts, per object, the re-applies that another writer's change made necessary.
type Guard struct {
	// Limit is how many re-applies within Window trip the guard.
	Limit int
	// Window is how far back re-applies count.
	Window time.Duration

	mu      sync.Mutex
	objects map[string]*record
}

type record struct {
	reapplies []time.Time
	// stoppedAt is the generation of the Gateway when the guard tripped; -1 while it has not.
	stoppedAt int64
}

// New returns a guard with the default limit and window.
func New() *Guard { return &Guard{Limit: DefaultLimit, Window: DefaultWindow} }

// Reapply records that the object had to be applied again at now, because another writer
// changed what the operator had applied, and reports whether that trips the guard; the
// Gateway's generation is what a later change must move past for the guard to reopen.
func (g *Guard) Reapply(key string, generation int64, now time.Time) (tripped bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.entry(key)
	kept := r.reapplies[:0]
	for _, t := range r.reapplies {
		if now.Sub(t) < g.Window {
			kept = append(kept, t)
		}
	}
	r.reapplies = append(kept, now)
	if len(r.reapplies) >= g.Limit {
		r.stoppedAt = generation
		return true
	}
	return false
}

// Stopped reports whether the operator must leave the object alone: the guard tripped and
// the Gateway has not changed since. A change of the Gateway reopens it, with a clean count.
func (g *Guard) Stopped(key string, generation int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.objects[key]
	if !ok || r.stoppedAt < 0 {
		return false
	}
	if generation != r.stoppedAt {
		delete(g.objects, key)
		return false
	}
	return true
}

// Forget drops what the guard knows of an object (its Gateway is gone).
func (g *Guard) Forget(key string) {
	g.mu.Lock()
	delete(g.objects, key)
	g.mu.Unlock()
}

func (g *Guard) entry(key string) *record {
	if g.objects == nil {
		g.objects = map[string]*record{}
	}
	r, ok := g.objects[key]
	if !ok {
		r = &record{stoppedAt: -1}
		g.objects[key] = r
	}
	return r
}
