package status

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// AddressKept says whether a replaced Service got back the address recorded under
// annotation before its replacement (kept), given the addresses its load balancer assigned
// now; invalid is an annotation value that is not an IP address. It returns nil when
// there is nothing to say (no recorded address), so that the condition exists only while
// the annotation does.
func AddressKept(annotation, kept, invalid, service string, assigned []gatewayv1.GatewayStatusAddress, generation int64) *metav1.Condition {
	var c metav1.Condition
	switch {
	case invalid != "":
		c = Condition(ConditionAddressKept, false, ReasonInvalidAddress,
			fmt.Sprintf("Annotation %s holds %q, which is not an IP address, so no address is asked for; remove the annotation", annotation, invalid), generation)
	case kept == "":
		return nil
	case len(assigned) == 0:
		c = Condition(ConditionAddressKept, false, ReasonPending, fmt.Sprintf("Service %s asks the load balancer for %s, the address it had before it was replaced, "+
			"and has no address yet; if the load balancer cannot give it back (see the Service's events), remove annotation %s to accept another address",
			service, kept, annotation), generation)
		c.Status = metav1.ConditionUnknown
	default:
		values := make([]string, 0, len(assigned))
		for _, a := range assigned {
			if a.Value == kept {
				c = Condition(ConditionAddressKept, true, ReasonKept, fmt.Sprintf("Service %s has %s, the address it had before it was replaced; "+
					"it keeps asking for it while annotation %s is on the Gateway", service, kept, annotation), generation)
				return &c
			}
			values = append(values, a.Value)
		}
		c = Condition(ConditionAddressKept, false, ReasonLost, fmt.Sprintf("Service %s was replaced and the load balancer assigned %s instead of %s, the address it had; "+
			"clients of %s must move to the new address; remove annotation %s to stop asking for %s", service, strings.Join(values, ", "), kept, kept, annotation, kept), generation)
	}
	return &c
}
