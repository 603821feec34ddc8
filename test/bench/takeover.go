package main

import (
	"fmt"
	"syscall"
	"time"

	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

// takeover is what an operator starting over N converged Gateways costs: after a restart
// (a rollout's new pod), or after a standby takes over from a killed leader.
type takeover struct {
	// leaderAfter is, for a failover, the time from the leader's death until the standby
	// leads (the Lease must expire first: 15 s by default).
	leaderAfter time.Duration
	// checked is the time from the start (or the leader's death) until the Gateway
	// reconciler has run N times: every Gateway of the initial list once.
	checked time.Duration
	// writes are the object and status writes the new operator made until it had been
	// quiet for 10 s (Leases and Events left out): 0 expected.
	writes float64
	// peakRSS is the new operator's peak resident set over that time (MiB).
	peakRSS float64
}

func (t takeover) String() string {
	s := fmt.Sprintf("every Gateway checked after %.1f s, %.0f writes, peak RSS %.0f MiB", t.checked.Seconds(), t.writes, t.peakRSS)
	if t.leaderAfter > 0 {
		s = fmt.Sprintf("leader after %.1f s, ", t.leaderAfter.Seconds()) + s
	}
	return s
}

// measureRestart stops op and starts a new operator, as a rollout replaces its pod.
func measureRestart(cfg config, cluster *localcluster.Cluster, op *operator, n int) (*operator, takeover, error) {
	op.stop()
	start := time.Now()
	next, err := startOperator(cfg, cluster, fmt.Sprintf("%d-restart", n), 0)
	if err != nil {
		return nil, takeover{}, err
	}
	cleanup.add(next.stop)
	t, err := next.takeOver(n, start)
	return next, t, err
}

// measureFailover runs two operators with leader election over the converged Gateways,
// kills the leader (SIGKILL: no Lease release, as when a node dies) and measures the
// standby.
func measureFailover(cfg config, cluster *localcluster.Cluster, op *operator, n int) (takeover, error) {
	op.stop()
	leader, err := startOperator(cfg, cluster, fmt.Sprintf("%d-leader", n), 1, "--leader-elect")
	if err != nil {
		return takeover{}, err
	}
	cleanup.add(leader.stop)
	if _, err := leader.takeOver(n, time.Now()); err != nil {
		return takeover{}, fmt.Errorf("the first leader: %w", err)
	}
	standby, err := startOperator(cfg, cluster, fmt.Sprintf("%d-standby", n), 2, "--leader-elect")
	if err != nil {
		return takeover{}, err
	}
	cleanup.add(standby.stop)
	// The standby is up and, not leading, idle: as before a failover in a cluster.
	time.Sleep(10 * time.Second)
	if standby.leads() {
		return takeover{}, fmt.Errorf("the standby leads beside a live leader")
	}
	killed := time.Now()
	_ = leader.cmd.Process.Signal(syscall.SIGKILL)
	<-leader.done
	if err := waitFor(2*time.Minute, func() (bool, error) { return standby.leads(), nil }); err != nil {
		return takeover{}, fmt.Errorf("waiting for the standby to lead: %w", err)
	}
	leaderAfter := time.Since(killed)
	t, err := standby.takeOver(n, killed)
	t.leaderAfter = leaderAfter
	return t, err
}

// leads tells whether the operator holds its leader-election Lease.
func (o *operator) leads() bool {
	m, err := o.scrape()
	if err != nil {
		return false
	}
	f, ok := m["leader_election_master_status"]
	if !ok {
		return false
	}
	for _, metric := range f.GetMetric() {
		if metric.GetGauge().GetValue() == 1 {
			return true
		}
	}
	return false
}

// takeOver waits until the operator has reconciled n Gateways and then been quiet, and
// reports from since.
func (o *operator) takeOver(n int, since time.Time) (takeover, error) {
	var t takeover
	if err := waitFor(10*time.Minute, func() (bool, error) {
		m, err := o.scrape()
		if err != nil {
			return false, nil
		}
		return sumCounter(m, "controller_runtime_reconcile_total", "controller", "gateway") >= float64(n), nil
	}); err != nil {
		return t, fmt.Errorf("waiting for %d Gateway reconciles: %w", n, err)
	}
	t.checked = time.Since(since)
	if _, err := o.waitForQuiet(10 * time.Second); err != nil {
		return t, err
	}
	m, err := o.scrape()
	if err != nil {
		return t, err
	}
	t.writes = objectWrites(m)
	_, _, t.peakRSS, err = o.procStats()
	return t, err
}
