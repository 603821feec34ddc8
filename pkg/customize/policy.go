package customize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// Rule names, as findings and rejections cite them.
const (
	RuleGatewayMayOverride = "gatewayMayOverride"
	RuleEnforced           = "enforced"
	RuleMaximums           = "maximums"
)

// ParsePolicy reads a class's policy and checks it whole: strict YAML of the Policy type,
// known data keys, every path on the allowlist, valid selectors and non-negative bounds.
// All problems are returned, each naming its place in the policy.
func ParsePolicy(text string) (*v1alpha1.Policy, []string) {
	js, err := yaml.YAMLToJSONStrict([]byte(text))
	if err != nil {
		return nil, []string{fmt.Sprintf("not valid YAML: %v", err)}
	}
	policy := &v1alpha1.Policy{}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(policy); err != nil {
		return nil, []string{fmt.Sprintf("not a policy: %v", err)}
	}
	var problems []string
	check := func(where string, mayOverride, enforced map[v1alpha1.DataKey][]string, maximums map[v1alpha1.DataKey]map[string]resource.Quantity) {
		for _, rule := range []struct {
			name  string
			paths map[v1alpha1.DataKey][]string
		}{{RuleGatewayMayOverride, mayOverride}, {RuleEnforced, enforced}} {
			for _, key := range sortedDataKeys(rule.paths) {
				for _, p := range rule.paths[key] {
					if problem := checkPolicyPath(key, p); problem != "" {
						problems = append(problems, fmt.Sprintf("%s%s.%s: %s", where, rule.name, key, problem))
					}
				}
			}
		}
		for _, key := range sortedDataKeys(maximums) {
			for _, p := range slices.Sorted(maps.Keys(maximums[key])) {
				if problem := checkPolicyPath(key, p); problem != "" {
					problems = append(problems, fmt.Sprintf("%s%s.%s: %s", where, RuleMaximums, key, problem))
				}
				if q := maximums[key][p]; q.Sign() < 0 {
					problems = append(problems, fmt.Sprintf("%s%s.%s: %s bound %s is negative", where, RuleMaximums, key, p, q.String()))
				}
			}
		}
	}
	check("", policy.GatewayMayOverride, policy.Enforced, policy.Maximums)
	names := map[string]bool{}
	for i, tier := range policy.Tiers {
		where := fmt.Sprintf("tiers[%d].", i)
		switch {
		case tier.Name == "":
			problems = append(problems, where+"name is required")
		case names[tier.Name]:
			problems = append(problems, fmt.Sprintf("%sname %q is used twice", where, tier.Name))
		}
		names[tier.Name] = true
		if _, err := metav1.LabelSelectorAsSelector(&tier.NamespaceSelector); err != nil {
			problems = append(problems, fmt.Sprintf("%snamespaceSelector: %v", where, err))
		}
		check(where, tier.GatewayMayOverride, tier.Enforced, tier.Maximums)
	}
	return policy, problems
}

func sortedDataKeys[V any](m map[v1alpha1.DataKey]V) []v1alpha1.DataKey {
	keys := make([]v1alpha1.DataKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkPolicyPath says why a policy path cannot be used, "" when it is on the allowlist: an
// allowlisted path, a step on the way to some (it then covers those below it), or a path
// below one.
func checkPolicyPath(key v1alpha1.DataKey, path string) string {
	if _, known := kindSchemas[key]; !known {
		return "is not a customization key"
	}
	segments, err := policyPathSegments(path)
	if err != nil {
		return fmt.Sprintf("%s: %v", path, err)
	}
	n := allowTrees[key]
	for _, s := range segments {
		if n.leaf {
			return ""
		}
		child := n.children[s]
		if child == nil {
			return fmt.Sprintf("%s is not on the allowlist", path)
		}
		n = child
	}
	return ""
}

// policyPathSegments splits "metadata.annotations[example.com/key]" into its steps; a
// bracket names a map key that may itself hold dots.
func policyPathSegments(path string) ([]string, error) {
	var out []string
	rest := path
	for rest != "" {
		dot, bracket := strings.IndexByte(rest, '.'), strings.IndexByte(rest, '[')
		switch {
		case bracket >= 0 && (dot < 0 || bracket < dot):
			if bracket > 0 {
				out = append(out, rest[:bracket])
			}
			end := strings.IndexByte(rest[bracket:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed [")
			}
			out = append(out, rest[bracket+1:bracket+end])
			rest = strings.TrimPrefix(rest[bracket+end+1:], ".")
		case dot >= 0:
			out = append(out, rest[:dot])
			rest = rest[dot+1:]
		default:
			out = append(out, rest)
			rest = ""
		}
	}
	if len(out) == 0 || slices.Contains(out, "") {
		return nil, fmt.Errorf("empty path step")
	}
	return out, nil
}

// Rules is the policy in force for one Gateway: the class-wide rules with those of the
// tier that selects its namespace.
type Rules struct {
	// Class names the GatewayClass whose policy this is, for the findings.
	Class string
	// Tier names the tier in force, "" for the class-wide rules.
	Tier        string
	mayOverride map[v1alpha1.DataKey][][]string
	enforced    map[v1alpha1.DataKey][][]string
	maximums    map[v1alpha1.DataKey][]bound
}

type bound struct {
	path  []string
	limit resource.Quantity
}

// RulesFor picks the rules a Gateway in a namespace with these labels is held to. A nil
// policy gives rules that let everything through. Paths ParsePolicy refused are skipped.
func RulesFor(policy *v1alpha1.Policy, class string, namespaceLabels map[string]string) Rules {
	r := Rules{Class: class}
	if policy == nil {
		return r
	}
	mayOverride, enforced, maximums := policy.GatewayMayOverride, policy.Enforced, policy.Maximums
	for _, tier := range policy.Tiers {
		selector, err := metav1.LabelSelectorAsSelector(&tier.NamespaceSelector)
		if err != nil || !selector.Matches(labels.Set(namespaceLabels)) {
			continue
		}
		r.Tier = tier.Name
		if tier.GatewayMayOverride != nil {
			mayOverride = tier.GatewayMayOverride
		}
		if tier.Enforced != nil {
			enforced = tier.Enforced
		}
		if tier.Maximums != nil {
			maximums = tier.Maximums
		}
		break
	}
	split := func(in map[v1alpha1.DataKey][]string) map[v1alpha1.DataKey][][]string {
		if in == nil {
			return nil
		}
		out := map[v1alpha1.DataKey][][]string{}
		for key, paths := range in {
			out[key] = [][]string{}
			for _, p := range paths {
				if segments, err := policyPathSegments(p); err == nil {
					out[key] = append(out[key], segments)
				}
			}
		}
		return out
	}
	r.mayOverride, r.enforced = split(mayOverride), split(enforced)
	for key, limits := range maximums {
		if r.maximums == nil {
			r.maximums = map[v1alpha1.DataKey][]bound{}
		}
		for p, limit := range limits {
			if segments, err := policyPathSegments(p); err == nil {
				r.maximums[key] = append(r.maximums[key], bound{segments, limit})
			}
		}
	}
	return r
}

// rule names the rule and the policy a finding cites.
func (r Rules) rule(name string) string {
	if r.Tier != "" {
		return fmt.Sprintf("GatewayClass %s policy, tier %s, rule %s", r.Class, r.Tier, name)
	}
	return fmt.Sprintf("GatewayClass %s policy, rule %s", r.Class, name)
}

// Filter applies the rules to a Gateway-level customization: what they forbid is dropped
// and what exceeds a bound is lowered to it, each with a finding naming the rule. The set
// given is left unchanged (it is shared through the ConfigMap memo).
func (r Rules) Filter(set *Set) (*Set, []Finding) {
	if r.mayOverride == nil && r.enforced == nil && r.maximums == nil && set.Policy == nil {
		// No policy: the set goes on as parsed, without a walk on every reconcile.
		return set, nil
	}
	out := &Set{Source: set.Source, Fragments: map[v1alpha1.DataKey]Fragment{}, Findings: set.Findings}
	var findings []Finding
	if set.Policy != nil {
		findings = append(findings, Finding{Source: set.Source, Path: v1alpha1.DataKeyPolicy,
			Problem: "is read only from the class level (the class defaults ConfigMap or the GatewayClass's parametersRef); ignored here"})
	}
	for _, key := range sortedDataKeys(set.Fragments) {
		fragment := set.Fragments[key]
		if r.mayOverride != nil {
			if _, listed := r.mayOverride[key]; !listed {
				findings = append(findings, Finding{Source: set.Source, Key: string(key), Rule: RuleGatewayMayOverride,
					Problem: fmt.Sprintf("may not be set by a Gateway (%s lists no path of it)", r.rule(RuleGatewayMayOverride))})
				continue
			}
		}
		w := &policyWalk{rules: r, key: key, source: set.Source}
		kept, _ := w.value(nil, map[string]any(fragment)).(map[string]any)
		findings = append(findings, w.findings...)
		out.Fragments[key] = kept
	}
	return out, findings
}

type policyWalk struct {
	rules    Rules
	key      v1alpha1.DataKey
	source   string
	findings []Finding
}

func (w *policyWalk) drop(display, rule, problem string) {
	w.findings = append(w.findings, Finding{Source: w.source, Key: string(w.key), Path: display, Problem: problem, Rule: rule})
}

// value walks a fragment and returns what the rules keep of it.
func (w *policyWalk) value(path []string, v any) any {
	kept, _ := w.node(path, strings.Join(path, "."), v, true)
	return kept
}

// node walks one node at path (the rule path: list elements are not steps) and returns
// what the rules keep of it; keep is false when nothing is kept, which tells an explicit
// null (a removal, kept where allowed) from a dropped value.
func (w *policyWalk) node(path []string, display string, v any, root bool) (kept any, keep bool) {
	if !root {
		if w.covered(w.rules.enforced[w.key], path) {
			w.drop(display, RuleEnforced, fmt.Sprintf("is set only by the class level (%s)", w.rules.rule(RuleEnforced)))
			return nil, false
		}
		if may := w.rules.mayOverride; may != nil && !w.covered(may[w.key], path) && !w.leadsTo(may[w.key], path) {
			w.drop(display, RuleGatewayMayOverride, fmt.Sprintf("may not be set by a Gateway (%s: %s)", w.rules.rule(RuleGatewayMayOverride), joinPaths(may[w.key])))
			return nil, false
		}
	}
	allowed := root || w.rules.mayOverride == nil || w.covered(w.rules.mayOverride[w.key], path)
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for _, k := range sortedKeys(t) {
			childDisplay := k
			if display != "" {
				childDisplay = display + "." + k
			}
			if kept, keep := w.node(append(slices.Clone(path), k), childDisplay, t[k], false); keep {
				out[k] = kept
			}
		}
		if len(out) == 0 && len(t) > 0 && !root {
			return nil, false
		}
		return out, true
	case []any:
		if strings.Join(path, ".") != v1alpha1.ContainersPath {
			return w.limit(path, display, v), true
		}
		var out []any
		for _, item := range t {
			element, ok := item.(map[string]any)
			if !ok {
				continue
			}
			// The name is the list's merge key, not a setting: it picks the element.
			name, _ := element["name"].(string)
			element = maps.Clone(element)
			delete(element, "name")
			kept, _ := w.node(path, fmt.Sprintf("%s[name=%s]", display, name), element, false)
			if settings, _ := kept.(map[string]any); len(settings) > 0 {
				settings["name"] = name
				out = append(out, settings)
			}
		}
		if len(out) == 0 {
			return nil, false
		}
		return out, true
	default:
		if !allowed {
			w.drop(display, RuleGatewayMayOverride, fmt.Sprintf("may not be set by a Gateway (%s: %s)", w.rules.rule(RuleGatewayMayOverride), joinPaths(w.rules.mayOverride[w.key])))
			return nil, false
		}
		return w.limit(path, display, v), true
	}
}

// limit lowers a value above a bound of the rules to the bound.
func (w *policyWalk) limit(path []string, display string, v any) any {
	for _, b := range w.rules.maximums[w.key] {
		if !slices.Equal(b.path, path) {
			continue
		}
		asked, ok := quantityOf(v)
		if !ok || asked.Cmp(b.limit) <= 0 {
			return v
		}
		w.drop(display, RuleMaximums, fmt.Sprintf("%s is above the maximum of %s (%s); %s applied", asked.String(), b.limit.String(), w.rules.rule(RuleMaximums), b.limit.String()))
		w.findings[len(w.findings)-1].Adjusted = true
		if _, number := v.(float64); number && b.limit.Format == resource.DecimalSI && b.limit.MilliValue()%1000 == 0 {
			return float64(b.limit.Value())
		}
		return b.limit.String()
	}
	return v
}

func quantityOf(v any) (resource.Quantity, bool) {
	switch t := v.(type) {
	case float64:
		q, err := resource.ParseQuantity(strconv.FormatFloat(t, 'f', -1, 64))
		return q, err == nil
	case string:
		q, err := resource.ParseQuantity(t)
		return q, err == nil
	}
	return resource.Quantity{}, false
}

// covered says whether one of the paths is path or above it.
func (w *policyWalk) covered(paths [][]string, path []string) bool {
	for _, p := range paths {
		if len(p) <= len(path) && slices.Equal(p, path[:len(p)]) {
			return true
		}
	}
	return false
}

// leadsTo says whether path is above one of the paths, so walking on may reach it.
func (w *policyWalk) leadsTo(paths [][]string, path []string) bool {
	for _, p := range paths {
		if len(p) > len(path) && slices.Equal(p[:len(path)], path) {
			return true
		}
	}
	return false
}

func joinPaths(paths [][]string) string {
	if len(paths) == 0 {
		return "none"
	}
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, strings.Join(p, "."))
	}
	sort.Strings(out)
	return "allowed " + strings.Join(out, ", ")
}

// Infrastructure applies the enforced rules to a Gateway's spec.infrastructure labels and
// annotations, which the operator puts on every generated object and pod: one a rule
// reserves for the class level (metadata.labels[<key>], metadata.annotations[<key>] or the
// pod template's, of any data key) is dropped with a finding. It returns the
// infrastructure to render with, a copy when anything was dropped.
func (r Rules) Infrastructure(infra *gatewayv1.GatewayInfrastructure) (*gatewayv1.GatewayInfrastructure, []Finding) {
	if infra == nil || r.enforced == nil {
		return infra, nil
	}
	reserved := func(field, key string) bool {
		for _, paths := range r.enforced {
			for _, p := range paths {
				for _, prefix := range [][]string{{"metadata", field}, {"spec", "template", "metadata", field}} {
					if slices.Equal(p, prefix) || slices.Equal(p, append(slices.Clone(prefix), key)) {
						return true
					}
				}
			}
		}
		return false
	}
	var findings []Finding
	out := infra.DeepCopy()
	drop := func(field, key string) {
		findings = append(findings, Finding{InGateway: true, Rule: RuleEnforced, Path: "spec.infrastructure." + field + "[" + key + "]",
			Problem: fmt.Sprintf("is set only by the class level (%s)", r.rule(RuleEnforced))})
	}
	for _, k := range slices.Sorted(maps.Keys(infra.Labels)) {
		if reserved("labels", string(k)) {
			delete(out.Labels, k)
			drop("labels", string(k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(infra.Annotations)) {
		if reserved("annotations", string(k)) {
			delete(out.Annotations, k)
			drop("annotations", string(k))
		}
	}
	if len(findings) == 0 {
		return infra, nil
	}
	return out, findings
}
