package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DataKeyPolicy is the data key of a class-level ConfigMap that holds the class's Policy.
// It lives beside the class defaults because the same platform team writes both, in the
// namespace tenants cannot write to, and one edit changes them together.
const DataKeyPolicy = "policy"

// Policy is what a platform team lets Gateway owners change in their Gateway-level
// ConfigMaps (and spec.infrastructure), per GatewayClass. An empty Policy allows the whole
// allowlist, as the operator does without one.
type Policy struct {
	// GatewayMayOverride lists, per data key, the allowlisted paths a Gateway level may
	// set; a data key it leaves out may not be set at all. Unset allows the whole allowlist.
	GatewayMayOverride map[DataKey][]string `json:"gatewayMayOverride,omitempty"`
	// Enforced lists, per data key, the paths only the class level sets: a Gateway-level
	// value there is dropped, so the class's value (or none) stays.
	Enforced map[DataKey][]string `json:"enforced,omitempty"`
	// Maximums bound, per data key and path, the numbers and quantities a Gateway-level
	// value may reach; a larger value is lowered to the bound.
	Maximums map[DataKey]map[string]resource.Quantity `json:"maximums,omitempty"`
	// Tiers give the Gateways of namespaces selected by label their own rules; the first
	// tier that selects a Gateway's namespace replaces the rules it sets.
	Tiers []PolicyTier `json:"tiers,omitempty"`
}

// PolicyTier is a set of rules for the namespaces its selector picks, such as a trusted
// team that may tune more than others.
type PolicyTier struct {
	// Name names the tier in findings and Events.
	Name string `json:"name"`
	// NamespaceSelector picks the namespaces whose Gateways the tier's rules govern.
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`
	// GatewayMayOverride, Enforced and Maximums replace the class-wide rule of the same
	// name when set.
	GatewayMayOverride map[DataKey][]string                     `json:"gatewayMayOverride,omitempty"`
	Enforced           map[DataKey][]string                     `json:"enforced,omitempty"`
	Maximums           map[DataKey]map[string]resource.Quantity `json:"maximums,omitempty"`
}

// PolicyFieldDoc is one row of the README's table of policy fields, which hack/docs renders
// and checks against the Policy type, so the table lists every field there is.
type PolicyFieldDoc struct {
	Field, Type, Meaning string
}

// PolicyFields documents the policy format for the README; a test fails when a field of
// Policy or PolicyTier has no row.
var PolicyFields = []PolicyFieldDoc{
	{"gatewayMayOverride", "data key -> list of paths", "The allowlisted paths a Gateway-level ConfigMap may set (a path allows everything below it). A data key left out may not be set at all, so a Gateway cannot ask for an HPA or PDB the class does not offer. Unset: the whole allowlist."},
	{"enforced", "data key -> list of paths", "Paths only the class level sets; a Gateway-level value there, or a `spec.infrastructure` label or annotation that would set one, is dropped. `metadata.annotations[<key>]` names one annotation (or label)."},
	{"maximums", "data key -> path -> quantity", "Upper bounds for Gateway-level numbers and quantities (`spec.maxReplicas: 10`, `spec.template.spec.containers.resources.limits.cpu: \"2\"`); a larger value is lowered to the bound."},
	{"tiers", "list", "Rules for the Gateways of namespaces selected by label, tried in order; the first that selects the namespace replaces the rules it sets."},
	{"tiers[].name", "string", "Names the tier in findings and Events."},
	{"tiers[].namespaceSelector", "label selector", "Picks the namespaces the tier governs (`matchLabels`, `matchExpressions`)."},
	{"tiers[].gatewayMayOverride, tiers[].enforced, tiers[].maximums", "as above", "Replace the class-wide rule of the same name for the tier's namespaces."},
}
