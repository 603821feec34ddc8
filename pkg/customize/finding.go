package customize

import (
	"fmt"
	"strings"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// Finding is one part of a customization that was not applied as written, kept so that the
// user can be told exactly which field of which ConfigMap was refused and why.
type Finding struct {
	// Source names the ConfigMap, as "namespace/name"; empty for a merged result.
	Source string
	// Key is the data key; empty when the finding is about the key itself.
	Key string
	// Path is the dotted field path inside the fragment, or the data key itself.
	Path string
	// Problem completes the sentence that starts with the path.
	Problem string
	// Adjusted says the value was changed (raised to a floor, lowered to a bound, left to
	// the HPA) rather than dropped: the condition's reason is ValuesAdjusted then.
	Adjusted bool
	// Rule names the class policy rule that dropped or lowered it, "" for the operator's
	// own rules (the allowlist, the replica floor).
	Rule string
	// InGateway says the path is in the Gateway's own spec (spec.infrastructure), not in a
	// ConfigMap's data.
	InGateway bool
}

// String reads as "data.deployment: spec.template.spec.hostNetwork is not allowed; ...".
func (f Finding) String() string {
	switch {
	case f.InGateway:
		return fmt.Sprintf("%s %s", f.Path, f.Problem)
	case f.Key == "":
		return fmt.Sprintf("data.%s %s", f.Path, f.Problem)
	case f.Path == "":
		return fmt.Sprintf("data.%s: %s", f.Key, f.Problem)
	default:
		return fmt.Sprintf("data.%s: %s %s", f.Key, f.Path, f.Problem)
	}
}

// dataKey is the data key the finding is about, also for an unknown key.
func (f Finding) dataKey() string {
	if f.Key == "" {
		return f.Path
	}
	return f.Key
}

// Describe prefixes the finding with the ConfigMap it came from, for status and events
// where several ConfigMaps contribute.
func (f Finding) Describe() string {
	if f.Source == "" {
		return f.String()
	}
	return fmt.Sprintf("ConfigMap %s %s", f.Source, f.String())
}

// JoinFindings renders findings for one message, in order, separated by "; ".
func JoinFindings(findings []Finding) string {
	parts := make([]string, 0, len(findings))
	for _, f := range findings {
		parts = append(parts, f.Describe())
	}
	return strings.Join(parts, "; ")
}

func unknownKeyFinding(source, key string) Finding {
	known := make([]string, 0, len(v1alpha1.DataKeys))
	for _, k := range v1alpha1.DataKeys {
		known = append(known, string(k))
	}
	return Finding{Source: source, Path: key, Problem: "is not a customization key; known keys: " + strings.Join(known, ", ")}
}

// Summary lists findings compactly, grouped by data key in order of appearance, for
// Events, whose note the API limits to 1 KiB: "data.deployment: a, b; data.service: c".
// The condition carries the full sentences.
func Summary(findings []Finding) string {
	var keys []string
	paths := map[string][]string{}
	for _, f := range findings {
		group := "data." + f.Key
		path := f.Path
		if f.Key == "" {
			group, path = "unknown data keys", f.Path
		}
		if _, seen := paths[group]; !seen {
			keys = append(keys, group)
		}
		paths[group] = append(paths[group], path)
	}
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+strings.Join(paths[k], ", "))
	}
	return strings.Join(parts, "; ")
}
