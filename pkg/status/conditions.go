// Package status computes what the operator reports on Gateways and GatewayClasses: the
// conditions, the listener entries with their attached routes, and the addresses. It is
// pure: callers pass in what they read and write out what it returns.
package status

import (
	"hash/fnv"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ConditionCustomizationsApplied is the operator's own Gateway condition: whether every
// field of the class and Gateway customizations reached the generated resources.
const ConditionCustomizationsApplied = "gateway.istio.io/CustomizationsApplied"

// ConditionResourcesApplied is the operator's own Gateway condition: whether the generated
// resources are in place as rendered. Beside istiod it is what the operator says about a
// Gateway, where istiod writes Accepted and Programmed.
const ConditionResourcesApplied = "gateway.istio.io/ResourcesApplied"

// OwnConditionTypes are the Gateway condition types the operator writes in every status
// mode; beside istiod, the only ones.
var OwnConditionTypes = []string{ConditionCustomizationsApplied, ConditionResourcesApplied, ConditionAddressKept}

// ConditionAddressKept is the operator's own Gateway condition while the Gateway carries
// v1alpha1.KeptAddressAnnotation: whether the load balancer gave the replacement Service
// the address the old one had, so that a replacement never loses an address silently.
const ConditionAddressKept = "gateway.istio.io/AddressKept"

// ConditionClassDefaultsResolved is the operator's own GatewayClass condition: whether
// exactly one class-level defaults ConfigMap could be told apart.
const ConditionClassDefaultsResolved = "gateway.istio.io/ClassDefaultsResolved"

// Reasons of the operator's own conditions.
const (
	// ReasonApplied: every customization field was applied as written.
	ReasonApplied = "Applied"
	// ReasonFieldsNotAllowed: fields off the allowlist or unknown data keys were dropped.
	ReasonFieldsNotAllowed = "FieldsNotAllowed"
	// ReasonValuesAdjusted: a value was raised to a floor (HPA minReplicas).
	ReasonValuesAdjusted = "ValuesAdjusted"
	// ReasonPolicyEnforced: the class policy dropped or lowered a Gateway-level value; the
	// message names each path and rule.
	ReasonPolicyEnforced = "PolicyEnforced"
	// ReasonInvalidParameters mirrors Gateway API's reason when nothing could be applied.
	ReasonInvalidParameters = string(gatewayv1.GatewayReasonInvalidParameters)
	// ReasonResolved: one class defaults ConfigMap, or none, was found.
	ReasonResolved = "Resolved"
	// ReasonMultipleDefaults: several ConfigMaps are labelled for one class; the oldest wins.
	ReasonMultipleDefaults = "MultipleDefaults"
	// ReasonRevisionNotInstalled: the Gateway's istio.io/rev names a revision that is not
	// installed, so no operator instance manages it.
	ReasonRevisionNotInstalled = "RevisionNotInstalled"
	// ReasonUnsupportedAddress mirrors Gateway API's reason for an address that cannot be
	// requested.
	ReasonUnsupportedAddress = string(gatewayv1.GatewayReasonUnsupportedAddress)
	// ReasonNameTaken: an object of a generated name exists that the operator did not create.
	ReasonNameTaken = "NameTaken"
	// ReasonRefused: the API server refused a generated object.
	ReasonRefused = "Refused"
	// ReasonImmutableField: a change asks for a field the API server will not change on an
	// existing object; the object is left as it is until the user decides (no retry loop).
	ReasonImmutableField = "ImmutableField"
	// ReasonPending mirrors Gateway API's reason while writes are retried after API errors.
	ReasonPending = string(gatewayv1.GatewayReasonPending)
	// ReasonContended: another writer kept changing generated objects back, and the
	// operator stopped applying them rather than keep a write war going.
	ReasonContended = "Contended"
	// ReasonRevisionConfigInvalid: the revision's own configuration (istiod's mesh and
	// injector ConfigMaps) is missing or malformed, so the proxies cannot be rendered.
	ReasonRevisionConfigInvalid = "RevisionConfigInvalid"
	// ReasonIstiodDeploymentController: istiod's own gateway deployment controller generates
	// the same objects, so the operator stands back until it is turned off.
	ReasonIstiodDeploymentController = "IstiodDeploymentController"
	// ReasonReplacing: the Service is being replaced (the Gateway opted in), and the old
	// one is still terminating.
	ReasonReplacing = "Replacing"
	// ReasonKept: the replacement Service has the address the old one had.
	ReasonKept = "Kept"
	// ReasonLost: the load balancer gave the replacement Service another address.
	ReasonLost = "Lost"
	// ReasonInvalidAddress: the kept-address annotation holds no IP address.
	ReasonInvalidAddress = "InvalidAddress"
)

// API limits on the text the operator reports.
const (
	// MaxConditionMessage is metav1.Condition's message limit.
	MaxConditionMessage = 32768
	// MaxEventNote is an events.k8s.io Event's note limit.
	MaxEventNote = 1024
)

// Condition builds a condition stamped with the generation it describes; a message over
// the API's limit is cut, so that the status write itself never fails.
func Condition(conditionType string, ok bool, reason, message string, generation int64) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: conditionType, Status: s, Reason: reason, Message: Truncate(message, MaxConditionMessage), ObservedGeneration: generation}
}

// Truncate cuts s to at most limit bytes, on a rune boundary, marking the cut.
func Truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const mark = " [truncated]"
	cut := limit - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// MergeConditions returns desired with each lastTransitionTime taken from existing when
// the status did not change, and now otherwise (apimachinery's SetStatusCondition rule), so
// that re-reporting the same state produces an identical status and therefore no write.
func MergeConditions(existing, desired []metav1.Condition, now metav1.Time) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(desired))
	for _, d := range desired {
		if prev := meta.FindStatusCondition(existing, d.Type); prev != nil {
			out = append(out, *prev)
		}
		d.LastTransitionTime = now
		meta.SetStatusCondition(&out, d)
	}
	return out
}

// ConditionsUpToDate reports whether existing already holds every desired condition
// exactly, and none of the operator's own types that desired leaves out; conditions of
// other types are ignored (other controllers own those).
func ConditionsUpToDate(existing, desired []metav1.Condition) bool {
	for _, own := range OwnConditionTypes {
		// One of the operator's own conditions that is no longer reported must go.
		if meta.FindStatusCondition(existing, own) != nil && meta.FindStatusCondition(desired, own) == nil {
			return false
		}
	}
	for _, d := range desired {
		prev := meta.FindStatusCondition(existing, d.Type)
		if prev == nil || prev.Status != d.Status || prev.Reason != d.Reason || prev.Message != d.Message ||
			prev.ObservedGeneration != d.ObservedGeneration || !prev.LastTransitionTime.Equal(&d.LastTransitionTime) {
			return false
		}
	}
	return true
}

// GatewayUpToDate reports whether the Gateway's status already says what desired says.
func GatewayUpToDate(existing, desired *gatewayv1.GatewayStatus) bool {
	if !reflect.DeepEqual(normalizeAddresses(existing.Addresses), normalizeAddresses(desired.Addresses)) {
		return false
	}
	if !ConditionsUpToDate(existing.Conditions, desired.Conditions) {
		return false
	}
	if len(existing.Listeners) != len(desired.Listeners) {
		return false
	}
	for _, d := range desired.Listeners {
		i := slices.IndexFunc(existing.Listeners, func(l gatewayv1.ListenerStatus) bool { return l.Name == d.Name })
		if i < 0 {
			return false
		}
		e := existing.Listeners[i]
		if e.AttachedRoutes != d.AttachedRoutes || !reflect.DeepEqual(normalizeKinds(e.SupportedKinds), normalizeKinds(d.SupportedKinds)) ||
			len(e.Conditions) != len(d.Conditions) || !ConditionsUpToDate(e.Conditions, d.Conditions) {
			return false
		}
	}
	return true
}

func normalizeAddresses(in []gatewayv1.GatewayStatusAddress) []gatewayv1.GatewayStatusAddress {
	out := make([]gatewayv1.GatewayStatusAddress, 0, len(in))
	for _, a := range in {
		if a.Type == nil {
			a.Type = new(gatewayv1.IPAddressType)
		}
		out = append(out, a)
	}
	return out
}

func normalizeKinds(in []gatewayv1.RouteGroupKind) []gatewayv1.RouteGroupKind {
	out := make([]gatewayv1.RouteGroupKind, 0, len(in))
	for _, k := range in {
		if k.Group == nil {
			k.Group = new(gatewayv1.Group(gatewayv1.GroupName))
		}
		out = append(out, k)
	}
	return out
}

// Fingerprint sums up what a status says in the fields a writer contests: the conditions of
// the given types, the addresses and the listeners (lastTransitionTime left out), so that a
// writer can remember what it wrote in a few bytes and tell, later, that someone else has
// changed it.
func Fingerprint(conditions []metav1.Condition, conditionTypes []string, addresses []gatewayv1.GatewayStatusAddress, listeners []gatewayv1.ListenerStatus) uint64 {
	h := fnv.New64a()
	write := func(parts ...string) {
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
	}
	writeConditions := func(conds []metav1.Condition, types []string) {
		for _, t := range types {
			c := meta.FindStatusCondition(conds, t)
			if c == nil {
				write(t, "absent")
				continue
			}
			write(c.Type, string(c.Status), c.Reason, c.Message, strconv.FormatInt(c.ObservedGeneration, 10))
		}
	}
	writeConditions(conditions, conditionTypes)
	for _, a := range normalizeAddresses(addresses) {
		write("address", string(ptr.Deref(a.Type, "")), a.Value)
	}
	for _, l := range listeners {
		types := make([]string, 0, len(l.Conditions))
		for _, c := range l.Conditions {
			types = append(types, c.Type)
		}
		sort.Strings(types)
		write("listener", string(l.Name), strconv.Itoa(int(l.AttachedRoutes)))
		for _, k := range normalizeKinds(l.SupportedKinds) {
			write(string(ptr.Deref(k.Group, "")), string(k.Kind))
		}
		writeConditions(l.Conditions, types)
	}
	return h.Sum64()
}
