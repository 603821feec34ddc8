package customize

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// tenantPolicy is the README's scenario (testdata/tenant-policy.yaml).
var tenantPolicy = func() string {
	text, err := os.ReadFile("testdata/tenant-policy.yaml")
	if err != nil {
		panic(err)
	}
	return string(text)
}()

func mustPolicy(t testing.TB, text string) *v1alpha1.Policy {
	t.Helper()
	p, problems := ParsePolicy(text)
	if len(problems) > 0 {
		t.Fatalf("policy refused: %q", problems)
	}
	return p
}

func gatewayLevel(t testing.TB, data map[string]string) *Set {
	t.Helper()
	set, err := Parse("team-a/gw-options", data)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestParsePolicyRefusesWhatItCannotEnforce(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string
	}{
		{name: "the README's policy", text: tenantPolicy},
		{name: "an empty policy allows the allowlist", text: ""},
		{name: "an unknown field", text: "gatewayMayOverrides: {}\n", want: []string{`not a policy: json: unknown field "gatewayMayOverrides"`}},
		{name: "a path off the allowlist", text: "enforced:\n  deployment: [spec.template.spec.hostNetwork]\n",
			want: []string{"enforced.deployment: spec.template.spec.hostNetwork is not on the allowlist"}},
		{name: "a path beside the allowlist", text: "gatewayMayOverride:\n  deployment: [spec.strategy]\n",
			want: []string{"gatewayMayOverride.deployment: spec.strategy is not on the allowlist"}},
		{name: "an unknown data key", text: "maximums:\n  gateway: {spec.x: 1}\n", want: []string{"maximums.gateway: is not a customization key"}},
		{name: "a negative bound", text: "maximums:\n  horizontalPodAutoscaler: {spec.maxReplicas: -1}\n",
			want: []string{"maximums.horizontalPodAutoscaler: spec.maxReplicas bound -1 is negative"}},
		{name: "a tier without a name, and a bad selector", text: "tiers:\n- namespaceSelector: {matchExpressions: [{key: a, operator: Maybe}]}\n",
			want: []string{"tiers[0].name is required", `tiers[0].namespaceSelector: "Maybe" is not a valid label selector operator`}},
		{name: "an unclosed bracket", text: "enforced:\n  service: [\"metadata.annotations[x\"]\n", want: []string{"enforced.service: metadata.annotations[x: unclosed ["}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, problems := ParsePolicy(tc.text)
			if len(problems) != len(tc.want) {
				t.Fatalf("problems %q, want %q", problems, tc.want)
			}
			for i := range tc.want {
				if !strings.HasPrefix(problems[i], tc.want[i]) {
					t.Errorf("problem %q, want it to start with %q", problems[i], tc.want[i])
				}
			}
		})
	}
}

func TestPolicyFilter(t *testing.T) {
	policy := mustPolicy(t, tenantPolicy)
	cases := []struct {
		name     string
		labels   map[string]string
		data     map[string]string
		kept     map[v1alpha1.DataKey]string
		findings []string
	}{
		{name: "allowed paths within bounds are kept whole",
			data: map[string]string{"horizontalPodAutoscaler": "spec: {minReplicas: 3, maxReplicas: 8}"},
			kept: map[v1alpha1.DataKey]string{"horizontalPodAutoscaler": `{"spec":{"maxReplicas":8,"minReplicas":3}}`}},
		{name: "a bound lowers a larger value and says which rule",
			data:     map[string]string{"horizontalPodAutoscaler": "spec: {maxReplicas: 50}"},
			kept:     map[v1alpha1.DataKey]string{"horizontalPodAutoscaler": `{"spec":{"maxReplicas":10}}`},
			findings: []string{"ConfigMap team-a/gw-options data.horizontalPodAutoscaler: spec.maxReplicas 50 is above the maximum of 10 (GatewayClass istio policy, rule maximums); 10 applied"}},
		{name: "an enforced path is dropped even where a Gateway may set the rest",
			data: map[string]string{"deployment": "metadata: {labels: {team: a}}\nspec: {template: {spec: {nodeSelector: {pool: cheap}}}}",
				"service": "metadata: {annotations: {service.beta.kubernetes.io/azure-load-balancer-internal: \"false\", owner: team-a}}"},
			kept: map[v1alpha1.DataKey]string{"deployment": `{"metadata":{"labels":{"team":"a"}}}`, "service": `{"metadata":{"annotations":{"owner":"team-a"}}}`},
			findings: []string{
				"ConfigMap team-a/gw-options data.deployment: spec.template.spec.nodeSelector is set only by the class level (GatewayClass istio policy, rule enforced)",
				"ConfigMap team-a/gw-options data.service: metadata.annotations.service.beta.kubernetes.io/azure-load-balancer-internal is set only by the class level (GatewayClass istio policy, rule enforced)",
			}},
		{name: "a path the policy does not list is dropped, naming what is allowed",
			data: map[string]string{"deployment": "spec: {template: {spec: {tolerations: [{key: spot}]}}}"},
			kept: map[v1alpha1.DataKey]string{"deployment": `{}`},
			findings: []string{"ConfigMap team-a/gw-options data.deployment: spec.template.spec.tolerations may not be set by a Gateway (GatewayClass istio policy, rule gatewayMayOverride: " +
				"allowed metadata.labels, spec.template.spec.containers.resources, spec.template.spec.nodeSelector)"}},
		{name: "a data key the policy does not list is not asked for at all",
			data:     map[string]string{"podDisruptionBudget": "spec: {minAvailable: 1}"},
			kept:     map[v1alpha1.DataKey]string{},
			findings: []string{"ConfigMap team-a/gw-options data.podDisruptionBudget: may not be set by a Gateway (GatewayClass istio policy, rule gatewayMayOverride lists no path of it)"}},
		{name: "container resources are bounded element by element",
			data:     map[string]string{"deployment": "spec: {template: {spec: {containers: [{name: istio-proxy, resources: {limits: {cpu: \"4\", memory: 1Gi}}}]}}}"},
			kept:     map[v1alpha1.DataKey]string{"deployment": `{"spec":{"template":{"spec":{"containers":[{"name":"istio-proxy","resources":{"limits":{"cpu":"2","memory":"1Gi"}}}]}}}}`},
			findings: []string{"ConfigMap team-a/gw-options data.deployment: spec.template.spec.containers[name=istio-proxy].resources.limits.cpu 4 is above the maximum of 2 (GatewayClass istio policy, rule maximums); 2 applied"}},
		{name: "a trusted tier has its own rules", labels: map[string]string{"gateway-tier": "trusted"},
			data:     map[string]string{"horizontalPodAutoscaler": "spec: {maxReplicas: 50}", "deployment": "spec: {template: {spec: {tolerations: [{key: spot}]}}}"},
			kept:     map[v1alpha1.DataKey]string{"horizontalPodAutoscaler": `{"spec":{"maxReplicas":20}}`, "deployment": `{"spec":{"template":{"spec":{"tolerations":[{"key":"spot"}]}}}}`},
			findings: []string{"ConfigMap team-a/gw-options data.horizontalPodAutoscaler: spec.maxReplicas 50 is above the maximum of 20 (GatewayClass istio policy, tier trusted, rule maximums); 20 applied"}},
		{name: "removing an enforced value is dropped too; removing an allowed one is kept",
			data:     map[string]string{"deployment": "metadata: {labels: null}\nspec: {template: {spec: {nodeSelector: null}}}"},
			kept:     map[v1alpha1.DataKey]string{"deployment": `{"metadata":{"labels":null}}`},
			findings: []string{"ConfigMap team-a/gw-options data.deployment: spec.template.spec.nodeSelector is set only by the class level (GatewayClass istio policy, rule enforced)"}},
		{name: "a policy at the Gateway level is not read",
			data:     map[string]string{"policy": "enforced: {}\n"},
			kept:     map[v1alpha1.DataKey]string{},
			findings: []string{"ConfigMap team-a/gw-options data.policy is read only from the class level"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := gatewayLevel(t, tc.data)
			before, _ := json.Marshal(set.Fragments)
			filtered, findings := RulesFor(policy, "istio", tc.labels).Filter(set)
			if after, _ := json.Marshal(set.Fragments); string(after) != string(before) {
				t.Error("Filter changed the set it was given, which the ConfigMap memo shares")
			}
			got := map[v1alpha1.DataKey]string{}
			for k, f := range filtered.Fragments {
				js, _ := json.Marshal(f)
				got[k] = string(js)
			}
			if !reflect.DeepEqual(got, tc.kept) {
				t.Errorf("kept %v, want %v", got, tc.kept)
			}
			if len(findings) != len(tc.findings) {
				t.Fatalf("findings %q, want %q", JoinFindings(findings), tc.findings)
			}
			for i := range findings {
				if !strings.HasPrefix(findings[i].Describe(), tc.findings[i]) {
					t.Errorf("finding %q, want it to start with %q", findings[i].Describe(), tc.findings[i])
				}
				if findings[i].Rule == "" && !strings.Contains(tc.findings[i], "data.policy") {
					t.Errorf("finding %q names no rule", findings[i].Describe())
				}
			}
		})
	}
}

func TestWithoutAPolicyTheSetGoesOnAsParsed(t *testing.T) {
	set := gatewayLevel(t, map[string]string{"deployment": "spec: {template: {spec: {containers: [{name: istio-proxy}]}}}"})
	if got, findings := RulesFor(nil, "istio", nil).Filter(set); got != set || findings != nil {
		t.Errorf("got %v with findings %v, want the set itself and none", got, findings)
	}
}

func TestPolicyDropsEnforcedInfrastructureMetadata(t *testing.T) {
	rules := RulesFor(mustPolicy(t, tenantPolicy), "istio", nil)
	infra := &gatewayv1.GatewayInfrastructure{
		Annotations: map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{"service.beta.kubernetes.io/azure-load-balancer-internal": "false", "owner": "a"},
		Labels:      map[gatewayv1.LabelKey]gatewayv1.LabelValue{"team": "a"},
	}
	kept, findings := rules.Infrastructure(infra)
	if _, ok := kept.Annotations["service.beta.kubernetes.io/azure-load-balancer-internal"]; ok {
		t.Error("the enforced annotation was kept")
	}
	if len(kept.Annotations) != 1 || len(kept.Labels) != 1 || len(infra.Annotations) != 2 {
		t.Errorf("kept %v, and the Gateway's own %v", kept, infra)
	}
	want := "spec.infrastructure.annotations[service.beta.kubernetes.io/azure-load-balancer-internal] is set only by the class level (GatewayClass istio policy, rule enforced)"
	if len(findings) != 1 || findings[0].Describe() != want || !findings[0].InGateway {
		t.Errorf("findings %q, want %q", JoinFindings(findings), want)
	}
	if same, none := RulesFor(nil, "istio", nil).Infrastructure(infra); same != infra || none != nil {
		t.Error("without a policy the infrastructure is used as written")
	}
}

// FuzzPolicyNeverAppliesAForbiddenValue: whatever a Gateway-level ConfigMap asks, what the
// policy's filter keeps sets no enforced path, only paths the policy lets Gateways set, and
// no number above a bound.
func FuzzPolicyNeverAppliesAForbiddenValue(f *testing.F) {
	f.Add("deployment", "spec: {template: {spec: {nodeSelector: {a: b}, containers: [{name: istio-proxy, resources: {limits: {cpu: 9}}}]}}}")
	f.Add("service", "metadata: {annotations: {service.beta.kubernetes.io/azure-load-balancer-internal: \"false\"}}")
	f.Add("horizontalPodAutoscaler", "spec: {maxReplicas: 99, minReplicas: 2}")
	f.Add("podDisruptionBudget", "spec: {minAvailable: 1}")
	policy := mustPolicy(f, tenantPolicy)
	rules := RulesFor(policy, "istio", nil)
	f.Fuzz(func(t *testing.T, key, fragment string) {
		set, err := Parse("ns/cm", map[string]string{key: fragment})
		if err != nil {
			return
		}
		filtered, _ := rules.Filter(set)
		for k, frag := range filtered.Fragments {
			may, listed := policy.GatewayMayOverride[k]
			if !listed {
				t.Fatalf("kept data key %s, which the policy lists no path of", k)
			}
			walkLeaves(nil, map[string]any(frag), func(path []string, v any) {
				joined := strings.Join(path, ".")
				for _, e := range policy.Enforced[k] {
					segments, _ := policyPathSegments(e)
					if len(segments) <= len(path) && slices.Equal(segments, path[:len(segments)]) {
						t.Fatalf("kept enforced %s.%s = %v", k, joined, v)
					}
				}
				allowed := false
				for _, m := range may {
					allowed = allowed || joined == m || strings.HasPrefix(joined, m+".")
				}
				if !allowed {
					t.Fatalf("kept %s.%s, which the policy does not let Gateways set", k, joined)
				}
				if limit, bounded := policy.Maximums[k][joined]; bounded {
					if q, ok := quantityOf(v); ok && q.Cmp(limit) > 0 {
						t.Fatalf("kept %s.%s = %v above the bound %s", k, joined, v, limit.String())
					}
				}
			})
		}
	})
}

// walkLeaves calls visit for every leaf of a fragment with its rule path (list elements of
// the container list are not steps; other lists are leaves).
func walkLeaves(path []string, v any, visit func([]string, any)) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if k == "name" && strings.Join(path, ".") == v1alpha1.ContainersPath {
				continue
			}
			walkLeaves(append(slices.Clone(path), k), child, visit)
		}
	case []any:
		if strings.Join(path, ".") == v1alpha1.ContainersPath {
			for _, item := range t {
				walkLeaves(path, item, visit)
			}
			return
		}
		visit(path, v)
	default:
		visit(path, v)
	}
}

var _ = resource.Quantity{}
