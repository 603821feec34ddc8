// Package outcome is what one reconcile of a Gateway found, as one typed value, and the
// Gateway status that value means. The reconciler computes a Result once; every condition
// (Accepted, Programmed, the listeners', the operator's own) is derived from it here, so
// that the priority between problems is written in one place: the order of the States.
package outcome

import (
	"errors"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubegate/istio-gateway-operator/pkg/customize"
)

// State is the one thing a Gateway's status tells about its reconcile. When a reconcile
// finds several problems, the State that comes last in this list is told: a problem that
// stopped everything before any write outranks a problem with one object.
type State int

const (
	// Applied: every generated object is as rendered (the addresses then decide Programmed).
	Applied State = iota
	// Retrying: writes have failed with transient API errors for a while; retried with backoff.
	Retrying
	// Contended: another writer kept changing a generated object back; it is no longer applied.
	Contended
	// Refused: the API server refused an apply or delete.
	Refused
	// Replacing: a Service the Gateway opted in to replace still terminates; the new one
	// is created once it is gone.
	Replacing
	// Immutable: a change asks for a field the API server will not change on an existing
	// object; reported, not retried, nothing deleted.
	Immutable
	// NameTaken: a generated object's name is taken by an object the operator did not create.
	NameTaken
	// UnsupportedAddress: spec.addresses holds an address the operator cannot request.
	UnsupportedAddress
	// InvalidParameters: the customizations cannot be used.
	InvalidParameters
	// RevisionConfigInvalid: istiod's mesh and injector ConfigMaps cannot give the proxies'
	// settings.
	RevisionConfigInvalid
	// IstiodDeploying: istiod's own gateway deployment controller runs for this revision and
	// would take every generated object over.
	IstiodDeploying
	// RevisionNotInstalled: the Gateway's istio.io/rev names a revision that is not installed.
	RevisionNotInstalled
)

// Result is one reconcile's account of a Gateway, for the status written next.
type Result struct {
	// State is the problem told, Applied when there is none; Message says it.
	State   State
	Message string
	// Service is the generated Service as last seen, for the addresses; nil when there is none.
	Service *corev1.Service
	// Findings are the customization parts dropped or adjusted.
	Findings []customize.Finding
	// Sources are the ConfigMaps whose customizations apply, lowest precedence first.
	Sources []string
	// refusals are the writes the API server refused: the reconcile is retried with backoff
	// while there are any, whatever State is told.
	refusals []string
}

// Report records a problem. The State later in the list wins; a second problem of the same
// State joins its message to the first.
func (r *Result) Report(state State, message string) {
	switch {
	case state > r.State:
		r.State, r.Message = state, message
	case state == r.State && state != Applied:
		r.Message += "; " + message
	}
}

// Refuse records a write the API server refused.
func (r *Result) Refuse(message string) {
	r.refusals = append(r.refusals, message)
	r.Report(Refused, message)
}

// RetryError is the refused writes as one error, returned after the status is written so
// that they are retried with backoff; nil when there were none.
func (r *Result) RetryError() error {
	if len(r.refusals) == 0 {
		return nil
	}
	return errors.New(strings.Join(r.refusals, "; "))
}

// BeforeApply reports whether the State stopped the reconcile before anything was applied,
// so that the generated objects were left exactly as they were.
func (r *Result) BeforeApply() bool { return r.State >= NameTaken }
