package contention

import (
	"testing"
	"time"
)

func TestGuard(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name        string
		reapplies   []time.Duration // after t0
		generation  int64
		wantTripped bool
		checkGen    int64
		wantStopped bool
	}{
		{"one re-apply is drift repaired", []time.Duration{0}, 1, false, 1, false},
		{"two within the window are not yet a war", []time.Duration{0, time.Minute}, 1, false, 1, false},
		{"the limit within the window trips it, and it stays stopped", []time.Duration{0, time.Minute, 2 * time.Minute}, 1, true, 1, true},
		{"re-applies spread beyond the window do not add up", []time.Duration{0, 11 * time.Minute, 22 * time.Minute}, 1, false, 1, false},
		{"a change of the Gateway reopens it", []time.Duration{0, time.Second, 2 * time.Second}, 4, true, 5, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := New()
			var tripped bool
			for _, d := range tc.reapplies {
				tripped = g.Reapply("Deployment ns/gw-istio", tc.generation, t0.Add(d))
			}
			if tripped != tc.wantTripped {
				t.Errorf("tripped = %v, want %v", tripped, tc.wantTripped)
			}
			if got := g.Stopped("Deployment ns/gw-istio", tc.checkGen); got != tc.wantStopped {
				t.Errorf("Stopped = %v, want %v", got, tc.wantStopped)
			}
			if g.Stopped("Service ns/gw-istio", tc.checkGen) {
				t.Error("another object is stopped too")
			}
		})
	}
}

func TestReopenedGuardCountsAfresh(t *testing.T) {
	t0 := time.Now()
	g := New()
	for i := range 3 {
		g.Reapply("k", 1, t0.Add(time.Duration(i)*time.Second))
	}
	if !g.Stopped("k", 1) || g.Stopped("k", 2) {
		t.Fatal("the guard should stop at generation 1 and reopen at 2")
	}
	if g.Reapply("k", 2, t0.Add(5*time.Second)) {
		t.Error("the first re-apply after reopening tripped the guard again")
	}
}
