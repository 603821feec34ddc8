package outcome

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/sources"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

// ClassConditions are a served GatewayClass's conditions, decided in one place for its
// status and its Events: Accepted, the operator's ClassDefaultsResolved, and
// SupportedVersion from the installed CRDs' bundle versions.
func ClassConditions(gc *gatewayv1.GatewayClass, defaults sources.ClassDefaults, bundleVersions map[string]string) []metav1.Condition {
	accepted := status.Condition(string(gatewayv1.GatewayClassConditionStatusAccepted), true,
		string(gatewayv1.GatewayClassReasonAccepted), "Handled by istio-gateway-operator", gc.Generation)
	if defaults.Problem != "" {
		accepted = status.Condition(string(gatewayv1.GatewayClassConditionStatusAccepted), false,
			string(gatewayv1.GatewayClassReasonInvalidParameters), defaults.Problem, gc.Generation)
	}
	resolved := status.Condition(status.ConditionClassDefaultsResolved, true, status.ReasonResolved, "No class defaults ConfigMap", gc.Generation)
	switch {
	case defaults.Problem != "":
		resolved = status.Condition(status.ConditionClassDefaultsResolved, false, status.ReasonInvalidParameters, defaults.Problem, gc.Generation)
	case len(defaults.Ignored) > 0:
		ignored := make([]string, 0, len(defaults.Ignored))
		for _, n := range defaults.Ignored {
			ignored = append(ignored, n.String())
		}
		resolved = status.Condition(status.ConditionClassDefaultsResolved, false, status.ReasonMultipleDefaults,
			fmt.Sprintf("Using ConfigMap %s, the oldest labelled %s=%s; ignoring %s", defaults.Ref, v1alpha1.DefaultsForClassLabel, gc.Name, strings.Join(ignored, ", ")),
			gc.Generation)
	case defaults.Ref != nil:
		resolved = status.Condition(status.ConditionClassDefaultsResolved, true, status.ReasonResolved, "Using ConfigMap "+defaults.Ref.String(), gc.Generation)
	}
	return []metav1.Condition{accepted, resolved, status.SupportedVersionCondition(bundleVersions, gc.Generation)}
}
