package customize

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// Verdict is what admission says about one customization ConfigMap: every violation (any
// one rejects it) and the warnings for legal but risky settings.
type Verdict struct {
	Violations []string
	Warnings   []string
	// SetsReplicas and AsksForHPA let the webhook warn that a Gateway-level spec.replicas
	// is not applied because the class level asks for an HPA, which this ConfigMap cannot see.
	SetsReplicas, AsksForHPA bool
}

// Allowed reports whether the ConfigMap may be admitted.
func (v Verdict) Allowed() bool { return len(v.Violations) == 0 }

// Validate judges a customization ConfigMap's data as the webhook does, on Parse's own
// pipeline: unknown keys, fragments that are not YAML of their kind, fields off the
// allowlist and replica bounds the reconciler would adjust are violations, all of them
// listed in data key order; PDB settings that can block node drains are warnings. What it
// admits, the reconciler keeps whole.
func Validate(data map[string]string) Verdict {
	var v Verdict
	set, problems := parse("", data)
	refused := append(slices.Clone(set.Findings), problems...)
	slices.SortStableFunc(refused, func(a, b Finding) int { return strings.Compare(a.dataKey(), b.dataKey()) })
	for _, f := range refused {
		v.Violations = append(v.Violations, f.String())
	}
	minReplicas := v1alpha1.MinHPAReplicas
	v.SetsReplicas = set.SetsReplicas()
	hpa, asksForHPA := set.Fragments[v1alpha1.DataKeyHorizontalPodAutoscaler]
	v.AsksForHPA = asksForHPA
	if asksForHPA {
		check := replicaBoundsOf(hpa).Check()
		for _, f := range append(check.Raised, check.Invalid...) {
			v.Violations = append(v.Violations, f.String())
		}
		if check.Min != nil {
			minReplicas = *check.Min
		}
		if v.SetsReplicas {
			v.Warnings = append(v.Warnings, ReplicasUnderHPA("").String())
		}
	}
	if pdb, ok := set.Fragments[v1alpha1.DataKeyPodDisruptionBudget]; ok {
		v.warnAboutDisruptions(pdb, minReplicas)
	}
	return v
}

// warnAboutDisruptions explains the drain and upgrade caveat of PDB settings.
func (v *Verdict) warnAboutDisruptions(pdb map[string]any, minReplicas int32) {
	prefix := "data." + string(v1alpha1.DataKeyPodDisruptionBudget) + ": "
	spec, _ := pdb["spec"].(map[string]any)
	if raw, ok := spec["minAvailable"]; ok && raw != nil {
		var ios intstr.IntOrString
		switch t := raw.(type) {
		case float64:
			ios = intstr.FromInt32(int32(t))
		case string:
			ios = intstr.FromString(t)
		}
		if available, err := intstr.GetScaledValueFromIntOrPercent(&ios, int(minReplicas), true); err == nil && available >= int(minReplicas) {
			v.Warnings = append(v.Warnings, fmt.Sprintf(
				"%sspec.minAvailable %s leaves no allowed disruption at the HPA minimum of %d replicas: node drains and cluster upgrades will block on the gateway pods; keep it below spec.minReplicas",
				prefix, ios.String(), minReplicas))
		}
	}
	switch spec["unhealthyPodEvictionPolicy"] {
	case "AlwaysAllow":
		v.Warnings = append(v.Warnings, prefix+"spec.unhealthyPodEvictionPolicy AlwaysAllow lets drains evict gateway pods that are not ready: upgrades proceed, but an incident can lose its last serving pods")
	case "IfHealthyBudget":
		v.Warnings = append(v.Warnings, prefix+"spec.unhealthyPodEvictionPolicy IfHealthyBudget protects not-ready gateway pods: a crash-looping pod can stall node drains and upgrades until it is fixed")
	}
}
