//go:build istio

package istio

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

// auditEvent is the part of a kube-apiserver audit line (audit.k8s.io/v1 Event, Metadata
// level) that says who wrote what.
type auditEvent struct {
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	Verb      string `json:"verb"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	StageTimestamp time.Time `json:"stageTimestamp"`
}

// target is what a write went to: "gateways/status", "deployments", ...
func (e auditEvent) target() string {
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

// writeCounts are write requests (successful or not: a refused write is an attempt too) per
// writer and target.
type writeCounts map[string]map[string]int

// of is the count for one writer and target; absent is 0.
func (w writeCounts) of(writer, target string) int { return w[writer][target] }

// total is the writes by one writer to the given targets.
func (w writeCounts) total(writer string, targets ...string) int {
	n := 0
	for _, t := range targets {
		n += w[writer][t]
	}
	return n
}

// String lists the counts, sorted, for a failure message.
func (w writeCounts) String() string {
	var lines []string
	for writer, targets := range w {
		for target, n := range targets {
			lines = append(lines, fmt.Sprintf("%s %s: %d", writer, target, n))
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return "no writes"
	}
	return strings.Join(lines, "\n")
}

// countWrites reads the audit log and counts the writes by the given writers completed
// at or after since (and before until, when it is not zero).
func countWrites(path string, since, until time.Time, writers ...string) (writeCounts, error) {
	wanted := map[string]bool{}
	for _, w := range writers {
		wanted[w] = true
	}
	counts := writeCounts{}
	err := eachEvent(path, func(e auditEvent) {
		if !wanted[e.User.Username] || e.StageTimestamp.Before(since) || (!until.IsZero() && !e.StageTimestamp.Before(until)) {
			return
		}
		if counts[e.User.Username] == nil {
			counts[e.User.Username] = map[string]int{}
		}
		counts[e.User.Username][e.target()]++
	})
	return counts, err
}

// objectWrites are one writer's write requests to one object, split by their answer.
type objectWrites struct {
	// Taken are the writes the API server accepted; Refused those it answered with a
	// conflict (the resourceVersion precondition of a decision another write overtook).
	Taken, Refused int
}

// writesPerObject counts one writer's writes to one target ("gateways/status"), per
// object name, since the given time.
func writesPerObject(path string, since time.Time, writer, target string) (map[string]objectWrites, error) {
	out := map[string]objectWrites{}
	err := eachEvent(path, func(e auditEvent) {
		if e.User.Username != writer || e.target() != target || e.StageTimestamp.Before(since) {
			return
		}
		w := out[e.ObjectRef.Name]
		if e.ResponseStatus.Code == http.StatusConflict {
			w.Refused++
		} else {
			w.Taken++
		}
		out[e.ObjectRef.Name] = w
	})
	return out, err
}

// eachEvent calls visit with every event of the audit log, in order.
func eachEvent(path string, visit func(auditEvent)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for scanner.Scan() {
		var e auditEvent
		if err := json.Unmarshal(scanner.Bytes(), &e); err != nil {
			return fmt.Errorf("reading the audit log: %w", err)
		}
		visit(e)
	}
	return scanner.Err()
}
