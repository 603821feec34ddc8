package status

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/pkg/consts"
)

// RequiredCRDs are the Gateway API CRDs the operator reads, whose bundle versions decide
// the GatewayClass's SupportedVersion condition.
var RequiredCRDs = []string{
	"gatewayclasses.gateway.networking.k8s.io",
	"gateways.gateway.networking.k8s.io",
	"httproutes.gateway.networking.k8s.io",
	"referencegrants.gateway.networking.k8s.io",
}

// SupportedVersion is the Gateway API release the operator is built and tested against;
// CRDs of the same minor release are supported.
var SupportedVersion = version.MustParseSemantic(consts.BundleVersion)

// SupportedVersionCondition reports whether the installed CRDs are of the supported Gateway
// API release, from each CRD's bundle-version annotation (bundleVersions maps a CRD name
// to it; a missing CRD maps to nothing, one without the annotation to ""). The operator
// serves other releases on a best-effort basis: the class stays Accepted.
func SupportedVersionCondition(bundleVersions map[string]string, generation int64) metav1.Condition {
	var problems []string
	for _, name := range RequiredCRDs {
		v, found := bundleVersions[name]
		switch parsed, err := version.ParseSemantic(v); {
		case !found:
			problems = append(problems, name+" is not installed")
		case v == "":
			problems = append(problems, name+" has no "+consts.BundleVersionAnnotation+" annotation")
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s has bundle version %q, which is not a version", name, v))
		case parsed.Major() != SupportedVersion.Major() || parsed.Minor() != SupportedVersion.Minor():
			problems = append(problems, fmt.Sprintf("%s is of bundle version %s", name, v))
		}
	}
	supported := fmt.Sprintf("v%d.%d.x", SupportedVersion.Major(), SupportedVersion.Minor())
	if len(problems) > 0 {
		slices.Sort(problems)
		return Condition(string(gatewayv1.GatewayClassConditionStatusSupportedVersion), false, string(gatewayv1.GatewayClassReasonUnsupportedVersion),
			fmt.Sprintf("%s; the operator supports Gateway API %s and serves other releases on a best-effort basis", strings.Join(problems, "; "), supported), generation)
	}
	return Condition(string(gatewayv1.GatewayClassConditionStatusSupportedVersion), true, string(gatewayv1.GatewayClassReasonSupportedVersion),
		"Gateway API CRDs are of the supported release "+supported, generation)
}
