package customize

import (
	"fmt"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// ReplicaBounds is an HorizontalPodAutoscaler's replica range as a customization sets it:
// one ConfigMap's fragment at admission, the merged object at rendering. The same rules
// judge both, so the webhook refuses exactly what the reconciler would adjust or refuse.
type ReplicaBounds struct {
	// Min and Max are nil where the customization does not set them.
	Min, Max *int32
	// MinRemoved is a minReplicas set to null, which Kubernetes reads as 1.
	MinRemoved bool
}

// ReplicaCheck is what the replica rules say about one ReplicaBounds.
type ReplicaCheck struct {
	// Min is the minimum in force once raised to the floor; nil when neither set nor removed.
	Min *int32
	// Raised says the minimum was removed or below MinHPAReplicas and was raised to it:
	// the gateway keeps two pods, and the user is told.
	Raised []Finding
	// Invalid lists bounds no adjustment can make usable: a maximum below the floor or
	// below the minimum.
	Invalid []Finding
}

// Check applies the operator's one set of replica rules.
func (b ReplicaBounds) Check() ReplicaCheck {
	var out ReplicaCheck
	key := string(v1alpha1.DataKeyHorizontalPodAutoscaler)
	floor := v1alpha1.MinHPAReplicas
	switch {
	case b.MinRemoved:
		out.Raised = append(out.Raised, Finding{Key: key, Path: "spec.minReplicas",
			Problem: fmt.Sprintf("unset (Kubernetes reads 1) is below the minimum of %d", floor)})
		out.Min = &floor
	case b.Min != nil && *b.Min < floor:
		out.Raised = append(out.Raised, Finding{Key: key, Path: "spec.minReplicas",
			Problem: fmt.Sprintf("%d is below the minimum of %d", *b.Min, floor)})
		out.Min = &floor
	case b.Min != nil:
		minimum := *b.Min
		out.Min = &minimum
	}
	if b.Max == nil {
		return out
	}
	switch {
	case *b.Max < floor:
		out.Invalid = append(out.Invalid, Finding{Key: key, Path: "spec.maxReplicas",
			Problem: fmt.Sprintf("%d is below the minimum of %d replicas", *b.Max, floor)})
	case out.Min != nil && *out.Min > *b.Max:
		out.Invalid = append(out.Invalid, Finding{Key: key, Path: "spec.minReplicas",
			Problem: fmt.Sprintf("%d is greater than spec.maxReplicas %d", *out.Min, *b.Max)})
	}
	return out
}

// replicaBoundsOf reads the bounds an HPA fragment sets.
func replicaBoundsOf(hpa Fragment) ReplicaBounds {
	var b ReplicaBounds
	spec, _ := hpa["spec"].(map[string]any)
	if raw, set := spec["minReplicas"]; set && raw == nil {
		b.MinRemoved = true
	}
	if n, ok := spec["minReplicas"].(float64); ok {
		b.Min = ptrInt32(n)
	}
	if n, ok := spec["maxReplicas"].(float64); ok {
		b.Max = ptrInt32(n)
	}
	return b
}

func ptrInt32(n float64) *int32 {
	v := int32(n)
	return &v
}

// SetsReplicas says whether a customization sets the Deployment's spec.replicas.
func (s *Set) SetsReplicas() bool {
	spec, _ := s.Fragments[v1alpha1.DataKeyDeployment]["spec"].(map[string]any)
	_, ok := spec["replicas"]
	return ok
}

// ReplicasUnderHPA is the finding for a spec.replicas that is not applied because an HPA
// exists: the HPA controller owns the count then, and saying so keeps
// CustomizationsApplied from claiming all was applied. It is an adjustment of the merged
// result (no Source, reason ValuesAdjusted), so the ConfigMap it came from, when known,
// is named in the sentence.
func ReplicasUnderHPA(source string) Finding {
	from := ""
	if source != "" {
		from = "from ConfigMap " + source + " "
	}
	return Finding{Key: string(v1alpha1.DataKeyDeployment), Path: "spec.replicas", Adjusted: true,
		Problem: fmt.Sprintf("%sis not applied: a HorizontalPodAutoscaler (data.%s) sets the replicas between its minReplicas and maxReplicas; set minReplicas instead",
			from, v1alpha1.DataKeyHorizontalPodAutoscaler)}
}
