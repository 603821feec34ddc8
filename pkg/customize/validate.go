package customize

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// Verdict is what admission says about one customization ConfigMap: every violation (any
// one rejects it) and the warnings for legal but risky settings.
type Verdict struct {
	Violations []string
	Warnings   []string
}

// Allowed reports whether the ConfigMap may be admitted.
func (v Verdict) Allowed() bool { return len(v.Violations) == 0 }

// Validate judges a customization ConfigMap's data as the webhook does: unknown keys,
// fragments that are not YAML of their kind, fields off the allowlist and HPA replica
// bounds are violations, all of them listed; PDB settings that can block node drains are
// warnings. What it admits, the reconciler's filter keeps whole.
func Validate(data map[string]string) Verdict {
	var v Verdict
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fragments := map[v1alpha1.DataKey]map[string]any{}
	for _, k := range keys {
		key := v1alpha1.DataKey(k)
		newSchema, known := kindSchemas[key]
		if !known {
			v.Violations = append(v.Violations, unknownKeyFinding("", k).String())
			continue
		}
		raw, err := parseYAML(data[k])
		if err != nil {
			v.Violations = append(v.Violations, fmt.Sprintf("data.%s: %v", k, err))
			continue
		}
		f := &filter{key: key}
		kept := f.object("", allowTrees[key], raw)
		for _, finding := range f.findings {
			v.Violations = append(v.Violations, finding.String())
		}
		if err := decodeStrict(kept, newSchema()); err != nil {
			v.Violations = append(v.Violations, fmt.Sprintf("data.%s: %v", k, err))
			continue
		}
		fragments[key] = kept
	}
	minReplicas := v1alpha1.MinHPAReplicas
	if hpa, ok := fragments[v1alpha1.DataKeyHorizontalPodAutoscaler]; ok {
		minReplicas = v.checkReplicas(hpa)
	}
	if pdb, ok := fragments[v1alpha1.DataKeyPodDisruptionBudget]; ok {
		v.warnAboutDisruptions(pdb, minReplicas)
	}
	if _, hpa := fragments[v1alpha1.DataKeyHorizontalPodAutoscaler]; hpa {
		if spec, _ := fragments[v1alpha1.DataKeyDeployment]["spec"].(map[string]any); spec != nil {
			if _, ok := spec["replicas"]; ok {
				v.Warnings = append(v.Warnings, fmt.Sprintf("data.%s: spec.replicas is not applied while data.%s asks for a HorizontalPodAutoscaler, which sets the replicas; set minReplicas instead",
					v1alpha1.DataKeyDeployment, v1alpha1.DataKeyHorizontalPodAutoscaler))
			}
		}
	}
	return v
}

func number(fragment map[string]any, path ...string) (float64, bool) {
	var cur any = fragment
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0, false
		}
		cur = m[p]
	}
	n, ok := cur.(float64)
	return n, ok
}

// checkReplicas enforces the floor and the ordering of the HPA's bounds within one
// ConfigMap, and returns the minimum in force for the PDB warning.
func (v *Verdict) checkReplicas(hpa map[string]any) int32 {
	prefix := "data." + string(v1alpha1.DataKeyHorizontalPodAutoscaler) + ": "
	minimum := v1alpha1.MinHPAReplicas
	if spec, ok := hpa["spec"].(map[string]any); ok {
		if raw, set := spec["minReplicas"]; set && raw == nil {
			v.Violations = append(v.Violations, fmt.Sprintf("%sspec.minReplicas may not be removed: it would default to 1, below the minimum of %d", prefix, v1alpha1.MinHPAReplicas))
		}
	}
	minSet := false
	if n, ok := number(hpa, "spec", "minReplicas"); ok {
		minSet = true
		if int32(n) < v1alpha1.MinHPAReplicas {
			v.Violations = append(v.Violations, fmt.Sprintf("%sspec.minReplicas %d is below the minimum of %d", prefix, int32(n), v1alpha1.MinHPAReplicas))
		} else {
			minimum = int32(n)
		}
	}
	if n, ok := number(hpa, "spec", "maxReplicas"); ok {
		switch {
		case int32(n) < v1alpha1.MinHPAReplicas:
			v.Violations = append(v.Violations, fmt.Sprintf("%sspec.maxReplicas %d is below the minimum of %d replicas", prefix, int32(n), v1alpha1.MinHPAReplicas))
		case minSet && int32(n) < minimum:
			v.Violations = append(v.Violations, fmt.Sprintf("%sspec.minReplicas %d is greater than spec.maxReplicas %d", prefix, minimum, int32(n)))
		}
	}
	return minimum
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
