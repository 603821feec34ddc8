package customize

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

func fuzzSeeds(f *testing.F) {
	f.Add("deployment", "spec:\n  template:\n    spec:\n      hostNetwork: true\n      nodeSelector: {a: b}\n")
	f.Add("deployment", "spec:\n  template:\n    spec:\n      containers:\n      - name: istio-proxy\n        image: x\n        resources: {limits: {cpu: '1'}}\n")
	f.Add("service", "metadata:\n  labels: {$patch: replace, gateway.istio.io/managed: x}\nspec:\n  type: NodePort\n  ports: []\n")
	f.Add("horizontalPodAutoscaler", "spec:\n  minReplicas: 1\n  maxReplicas: 3\n  scaleTargetRef: {name: x}\n")
	f.Add("podDisruptionBudget", "spec:\n  minAvailable: 50%\n  selector: {}\n")
	f.Add("deployment", "a: &a [1,2]\nb: [*a, *a]\n")
	f.Add("other", "x: y\n")
}

// allowedPath reports whether a kept path lies under an allowlisted one (or is a container
// list's merge key).
func allowedPath(key v1alpha1.DataKey, path string) bool {
	for _, p := range v1alpha1.Allowlist[key] {
		if path == p || strings.HasPrefix(path, p+".") {
			return true
		}
	}
	return path == v1alpha1.ContainersPath+".name"
}

// leafPaths lists the dotted paths of a kept fragment, entering the container list.
func leafPaths(prefix string, v any, out *[]string) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 && prefix != "" {
			*out = append(*out, prefix)
		}
		for k, child := range t {
			leafPaths(joinPath(prefix, k), child, out)
		}
	case []any:
		if prefix == v1alpha1.ContainersPath {
			for _, e := range t {
				leafPaths(prefix, e, out)
			}
			return
		}
		*out = append(*out, prefix)
	default:
		*out = append(*out, prefix)
	}
}

// FuzzFilterNeverKeepsAnOffListPath: whatever a ConfigMap says, what Parse keeps is on the
// allowlist, has no patch directive, and sets no reserved label.
func FuzzFilterNeverKeepsAnOffListPath(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, key, fragment string) {
		set, err := Parse("ns/cm", map[string]string{key: fragment})
		if err != nil {
			return
		}
		for k, kept := range set.Fragments {
			var paths []string
			leafPaths("", map[string]any(kept), &paths)
			for _, p := range paths {
				if !allowedPath(k, p) {
					t.Fatalf("kept off-list path %s in %s from %q", p, k, fragment)
				}
				for _, segment := range strings.Split(p, ".") {
					if strings.HasPrefix(segment, "$") {
						t.Fatalf("kept a patch directive at %s from %q", p, fragment)
					}
				}
			}
			js, _ := json.Marshal(kept)
			for _, reserved := range v1alpha1.ReservedLabels {
				if strings.Contains(string(js), `"`+reserved+`"`) && strings.Contains(string(js), `"labels"`) {
					var probe struct {
						Metadata struct{ Labels map[string]any } `json:"metadata"`
					}
					_ = json.Unmarshal(js, &probe)
					if _, set := probe.Metadata.Labels[reserved]; set {
						t.Fatalf("kept reserved label %s from %q", reserved, fragment)
					}
				}
			}
		}
	})
}

// FuzzValidatorAgreesWithFilter: what the webhook admits, the reconciler keeps whole and
// applies unadjusted; what the filter would trim or the replica rules adjust or refuse, the
// webhook rejects.
func FuzzValidatorAgreesWithFilter(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, key, fragment string) {
		data := map[string]string{key: fragment}
		verdict := Validate(data)
		set, err := Parse("ns/cm", data)
		changed := err != nil || len(set.Findings) > 0
		if err == nil {
			if hpa, ok := set.Fragments[v1alpha1.DataKeyHorizontalPodAutoscaler]; ok {
				check := replicaBoundsOf(hpa).Check()
				changed = changed || len(check.Raised) > 0 || len(check.Invalid) > 0
			}
		}
		if verdict.Allowed() == changed {
			t.Fatalf("admitted %v, yet the reconciler changes or refuses it %v: %q %v %v", verdict.Allowed(), changed, fragment, verdict.Violations, err)
		}
	})
}

// FuzzParseIsDeterministic: parsing the same data twice gives the same fragments and
// findings (map order never leaks into results).
func FuzzParseIsDeterministic(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, key, fragment string) {
		a, errA := Parse("ns/cm", map[string]string{key: fragment})
		b, errB := Parse("ns/cm", map[string]string{key: fragment})
		if (errA == nil) != (errB == nil) || (errA != nil && errA.Error() != errB.Error()) {
			t.Fatalf("errors differ: %v / %v", errA, errB)
		}
		if errA == nil && !reflect.DeepEqual(a, b) {
			t.Fatalf("results differ for %q", fragment)
		}
	})
}
