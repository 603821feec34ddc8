package outcome

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/customize"
	"github.com/kubegate/istio-gateway-operator/pkg/render"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

// unchanged ends the message of a problem that stopped the reconcile before any write.
const unchanged = "; the generated resources were left unchanged"

// told is how each problem State reads in the conditions.
type told struct {
	// programmed is Programmed's reason (its status is False).
	programmed gatewayv1.GatewayConditionReason
	// resources is ResourcesApplied's reason (its status is False).
	resources string
	// detail turns the Result's message into the one ResourcesApplied gives, and Programmed
	// too unless summary is set.
	detail func(message string) string
	// summary is Programmed's message when Accepted tells the detail.
	summary string
	// accepted, when set, is Accepted's reason: the State makes the Gateway not accepted.
	accepted gatewayv1.GatewayConditionReason
	// customizations, when set, is CustomizationsApplied's reason: the State means no
	// customization reached the objects; customizationsMessage says why ("" is the message).
	customizations        string
	customizationsMessage string
}

func as(message string) string            { return message }
func leftUnchanged(message string) string { return message + unchanged }

// telling has a row for every State but Applied, whose conditions the addresses decide.
var telling = map[State]told{
	RevisionNotInstalled: {programmed: gatewayv1.GatewayReasonInvalid, resources: status.ReasonRevisionNotInstalled, detail: as,
		summary: "No installed revision manages this Gateway (see Accepted)", accepted: status.ReasonRevisionNotInstalled,
		customizations: status.ReasonRevisionNotInstalled, customizationsMessage: "No installed revision applies customizations to this Gateway"},
	IstiodDeploying: {programmed: gatewayv1.GatewayReasonInvalid, resources: status.ReasonIstiodDeploymentController, detail: as,
		// istiod generates the objects from its own template: none of the operator's
		// rendering, customizations included, reaches them.
		customizations: status.ReasonIstiodDeploymentController,
		customizationsMessage: "Not applied: istiod's own gateway deployment controller generates this Gateway's objects; see " +
			status.ConditionResourcesApplied},
	RevisionConfigInvalid: {programmed: gatewayv1.GatewayReasonInvalid, resources: status.ReasonRevisionConfigInvalid, detail: leftUnchanged},
	InvalidParameters: {programmed: gatewayv1.GatewayReasonInvalid, resources: status.ReasonInvalidParameters, detail: leftUnchanged,
		summary: "The Gateway's parameters are invalid (see Accepted)", accepted: gatewayv1.GatewayReasonInvalidParameters,
		customizations: status.ReasonInvalidParameters},
	UnsupportedAddress: {programmed: gatewayv1.GatewayReasonInvalid, resources: status.ReasonUnsupportedAddress, detail: leftUnchanged,
		summary: "The Gateway's addresses cannot be requested (see Accepted)", accepted: gatewayv1.GatewayReasonUnsupportedAddress},
	NameTaken: {programmed: gatewayv1.GatewayReasonInvalid, resources: status.ReasonNameTaken, detail: as},
	Immutable: {programmed: status.ReasonImmutableField, resources: status.ReasonImmutableField, detail: as},
	Replacing: {programmed: gatewayv1.GatewayReasonPending, resources: status.ReasonReplacing, detail: as},
	Refused: {programmed: gatewayv1.GatewayReasonInvalid, resources: status.ReasonRefused,
		detail: func(message string) string { return "The API server refused a generated resource: " + message }},
	Contended: {programmed: gatewayv1.GatewayReasonInvalid, resources: status.ReasonContended, detail: as},
	Retrying: {programmed: gatewayv1.GatewayReasonPending, resources: status.ReasonPending,
		detail: func(message string) string { return "Retrying with backoff after API errors: " + message }},
}

// GatewayStatus is the Gateway's whole status for one reconcile's Result and what the
// listeners depend on; revision names the control-plane revision that generated it.
func GatewayStatus(gw *gatewayv1.Gateway, res *Result, in status.ListenerInputs, revision string) *gatewayv1.GatewayStatus {
	gen := gw.Generation
	row, problem := telling[res.State]
	addresses := ServiceAddresses(res.Service)

	programmed := addressesProgrammed(gw, res.Service, addresses)
	resources := status.Condition(status.ConditionResourcesApplied, true, status.ReasonApplied, "Resources are applied by revision "+revisionName(revision), gen)
	if problem {
		message := row.summary
		if message == "" {
			message = row.detail(res.Message)
		}
		programmed = status.Condition(string(gatewayv1.GatewayConditionProgrammed), false, string(row.programmed), message, gen)
		resources = status.Condition(status.ConditionResourcesApplied, false, row.resources, row.detail(res.Message), gen)
	}

	// Listeners are programmed when the Gateway is.
	in.Programmed = programmed.Status == metav1.ConditionTrue
	listeners := status.Listeners(gw, in)
	accepted := listenersAccepted(listeners, revision, gen)
	if problem && row.accepted != "" {
		accepted = status.Condition(string(gatewayv1.GatewayConditionAccepted), false, string(row.accepted), row.detail(res.Message), gen)
	}

	st := &gatewayv1.GatewayStatus{
		Addresses:  addresses,
		Conditions: []metav1.Condition{accepted, programmed, customizationsCondition(res, row, problem, gen), resources},
	}
	kept, invalid := render.KeptAddress(gw)
	if c := status.AddressKept(v1alpha1.KeptAddressAnnotation, kept, invalid, gw.Namespace+"/"+render.Name(gw.Name), addresses, gen); c != nil {
		st.Conditions = append(st.Conditions, *c)
	}
	for _, l := range listeners {
		st.Listeners = append(st.Listeners, l.Status)
	}
	return st
}

// addressesProgrammed is Programmed when every object is applied: True once the Service has
// the address the Gateway asks for (or any, when it asks for none).
func addressesProgrammed(gw *gatewayv1.Gateway, svc *corev1.Service, addresses []gatewayv1.GatewayStatusAddress) metav1.Condition {
	condition := func(ok bool, reason gatewayv1.GatewayConditionReason, message string) metav1.Condition {
		return status.Condition(string(gatewayv1.GatewayConditionProgrammed), ok, string(reason), message, gw.Generation)
	}
	if unusable := unusableAddressMessage(gw, addresses); unusable != "" {
		return condition(false, gatewayv1.GatewayReasonAddressNotUsable, unusable)
	}
	if len(addresses) == 0 {
		return condition(false, gatewayv1.GatewayReasonAddressNotAssigned, noAddressMessage(gw, svc))
	}
	return condition(true, gatewayv1.GatewayReasonProgrammed,
		fmt.Sprintf("Resources applied; Service %s/%s has address %s", gw.Namespace, render.Name(gw.Name), addresses[0].Value))
}

// listenersAccepted is Accepted as the listeners decide it: not accepted when none is valid,
// accepted naming the invalid ones otherwise.
func listenersAccepted(listeners []status.ListenerResult, revision string, gen int64) metav1.Condition {
	var invalid []string
	for _, l := range listeners {
		if !l.Valid {
			invalid = append(invalid, string(l.Status.Name))
		}
	}
	switch {
	case len(invalid) > 0 && len(invalid) == len(listeners):
		return status.Condition(string(gatewayv1.GatewayConditionAccepted), false, string(gatewayv1.GatewayReasonListenersNotValid),
			"No listener is accepted (see their conditions): "+strings.Join(invalid, ", "), gen)
	case len(invalid) > 0:
		return status.Condition(string(gatewayv1.GatewayConditionAccepted), true, string(gatewayv1.GatewayReasonListenersNotValid),
			"Listeners not valid: "+strings.Join(invalid, ", ")+"; the others are served", gen)
	}
	return status.Condition(string(gatewayv1.GatewayConditionAccepted), true, string(gatewayv1.GatewayReasonAccepted),
		"Resources are generated by revision "+revisionName(revision), gen)
}

// customizationsCondition says which customizations reached the objects, and which parts
// were dropped or adjusted on the way.
func customizationsCondition(res *Result, row told, problem bool, gen int64) metav1.Condition {
	condition := func(ok bool, reason, message string) metav1.Condition {
		return status.Condition(status.ConditionCustomizationsApplied, ok, reason, message, gen)
	}
	if problem && row.customizations != "" {
		message := row.customizationsMessage
		if message == "" {
			message = res.Message
		}
		return condition(false, row.customizations, message)
	}
	var dropped, adjusted []customize.Finding
	byPolicy := false
	for _, f := range res.Findings {
		byPolicy = byPolicy || f.Rule != ""
		if f.Adjusted {
			adjusted = append(adjusted, f)
		} else {
			dropped = append(dropped, f)
		}
	}
	switch {
	case byPolicy:
		var parts []string
		if len(dropped) > 0 {
			parts = append(parts, "Not applied: "+customize.JoinFindings(dropped))
		}
		if len(adjusted) > 0 {
			parts = append(parts, "adjusted: "+customize.JoinFindings(adjusted))
		}
		return condition(false, status.ReasonPolicyEnforced, strings.Join(parts, "; "))
	case len(dropped) > 0:
		message := "Not applied: " + customize.JoinFindings(dropped)
		if len(adjusted) > 0 {
			message += "; adjusted: " + customize.JoinFindings(adjusted)
		}
		return condition(false, status.ReasonFieldsNotAllowed, message)
	case len(adjusted) > 0:
		return condition(false, status.ReasonValuesAdjusted, "Adjusted: "+customize.JoinFindings(adjusted))
	case len(res.Sources) == 0:
		return condition(true, status.ReasonApplied, "No customization ConfigMaps")
	default:
		return condition(true, status.ReasonApplied, "Applied ConfigMaps "+strings.Join(res.Sources, ", "))
	}
}

func revisionName(revision string) string {
	if revision == "" {
		return "default"
	}
	return revision
}
