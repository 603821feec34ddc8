package customize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// Fragment is one data key's content after filtering: a strategic merge patch for the
// generated object of that kind.
type Fragment map[string]any

// Set is what one customization ConfigMap contributes: its fragments by data key and the
// findings about what it asked for but will not get.
type Set struct {
	// Source names the ConfigMap as "namespace/name".
	Source string
	// Fragments holds one fragment per data key present, possibly empty: a present key is
	// what asks for an HPA or PDB at all.
	Fragments map[v1alpha1.DataKey]Fragment
	// Findings lists unknown data keys and every dropped field.
	Findings []Finding
	// Policy is the class policy the ConfigMap holds under data key policy; only the class
	// level's is read.
	Policy *v1alpha1.Policy
}

// InvalidError says a customization cannot be used at all: a fragment is not YAML, not a
// mapping, or has a value of the wrong type for its field. It lists every such problem.
type InvalidError struct {
	// Source names what is invalid: "ConfigMap namespace/name" or the merged result.
	Source   string
	Problems []string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("invalid customization in %s: %s", e.Source, strings.Join(e.Problems, "; "))
}

// IsInvalid reports whether err says that user input, not the cluster, is at fault, so
// that callers surface it instead of retrying.
func IsInvalid(err error) bool {
	var invalid *InvalidError
	return errors.As(err, &invalid)
}

// kindSchemas are the typed objects each fragment must decode into.
var kindSchemas = map[v1alpha1.DataKey]func() any{
	v1alpha1.DataKeyDeployment:              func() any { return &appsv1.Deployment{} },
	v1alpha1.DataKeyService:                 func() any { return &corev1.Service{} },
	v1alpha1.DataKeyHorizontalPodAutoscaler: func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	v1alpha1.DataKeyPodDisruptionBudget:     func() any { return &policyv1.PodDisruptionBudget{} },
}

// Parse reads a customization ConfigMap's data. Unknown keys and off-list fields are
// findings, not errors: the rest still applies. Malformed fragments make the whole
// ConfigMap invalid, so that nothing half-understood reaches the cluster.
func Parse(source string, data map[string]string) (*Set, error) {
	set, problems := parse(source, data)
	if len(problems) > 0 {
		messages := make([]string, 0, len(problems))
		for _, p := range problems {
			messages = append(messages, p.String())
		}
		return nil, &InvalidError{Source: "ConfigMap " + source, Problems: messages}
	}
	return set, nil
}

// parse is Parse's one pipeline, shared with Validate: every data key in order, each
// fragment read as YAML, filtered through the allowlist and decoded into its kind. It
// returns what could be kept, with its findings, and the fragments that are malformed.
func parse(source string, data map[string]string) (*Set, []Finding) {
	set := &Set{Source: source, Fragments: map[v1alpha1.DataKey]Fragment{}}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var problems []Finding
	for _, k := range keys {
		if k == v1alpha1.DataKeyPolicy {
			policy, invalid := ParsePolicy(data[k])
			for _, p := range invalid {
				problems = append(problems, Finding{Source: source, Key: k, Problem: p})
			}
			if len(invalid) == 0 {
				set.Policy = policy
			}
			continue
		}
		key := v1alpha1.DataKey(k)
		newSchema, known := kindSchemas[key]
		if !known {
			set.Findings = append(set.Findings, unknownKeyFinding(source, k))
			continue
		}
		raw, err := parseYAML(data[k])
		if err != nil {
			problems = append(problems, Finding{Source: source, Key: k, Problem: err.Error()})
			continue
		}
		f := &filter{source: source, key: key}
		kept := f.object("", allowTrees[key], raw)
		set.Findings = append(set.Findings, f.findings...)
		if err := decodeStrict(kept, newSchema()); err != nil {
			problems = append(problems, Finding{Source: source, Key: k, Problem: err.Error()})
			continue
		}
		set.Fragments[key] = kept
	}
	return set, problems
}

func parseYAML(text string) (map[string]any, error) {
	if strings.TrimSpace(text) == "" {
		return map[string]any{}, nil
	}
	js, err := yaml.YAMLToJSONStrict([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	switch t := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return t, nil
	default:
		return nil, fmt.Errorf("must be a YAML mapping, not %s", describe(v))
	}
}

// decodeStrict checks that a fragment's values have the types of its resource kind, so
// that a typo such as `maxReplicas: five` is reported against the ConfigMap that has it.
func decodeStrict(fragment map[string]any, into any) error {
	js, err := json.Marshal(fragment)
	if err != nil {
		return fmt.Errorf("encoding fragment: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return fmt.Errorf("%s must be %s, not a %s", typeErr.Field, typeErr.Type, typeErr.Value)
		}
		return err
	}
	return nil
}
