package customize

import (
	"reflect"
	"testing"
)

func TestReplicaRules(t *testing.T) {
	n := func(v int32) *int32 { return &v }
	strs := func(fs []Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.String())
		}
		return out
	}
	cases := []struct {
		name    string
		bounds  ReplicaBounds
		min     *int32
		raised  []string
		invalid []string
	}{
		{name: "bounds within the rules are kept", bounds: ReplicaBounds{Min: n(3), Max: n(6)}, min: n(3)},
		{name: "a maximum alone leaves the minimum to another level", bounds: ReplicaBounds{Max: n(4)}},
		{name: "nothing set says nothing", bounds: ReplicaBounds{}},
		{name: "a minimum below the floor is raised to it", bounds: ReplicaBounds{Min: n(1), Max: n(4)}, min: n(2),
			raised: []string{"data.horizontalPodAutoscaler: spec.minReplicas 1 is below the minimum of 2"}},
		{name: "a removed minimum is raised to the floor", bounds: ReplicaBounds{MinRemoved: true, Max: n(4)}, min: n(2),
			raised: []string{"data.horizontalPodAutoscaler: spec.minReplicas unset (Kubernetes reads 1) is below the minimum of 2"}},
		{name: "a maximum below the floor cannot be used", bounds: ReplicaBounds{Max: n(1)},
			invalid: []string{"data.horizontalPodAutoscaler: spec.maxReplicas 1 is below the minimum of 2 replicas"}},
		{name: "a minimum above the maximum cannot be used", bounds: ReplicaBounds{Min: n(5), Max: n(3)}, min: n(5),
			invalid: []string{"data.horizontalPodAutoscaler: spec.minReplicas 5 is greater than spec.maxReplicas 3"}},
		{name: "a raised minimum is compared with the maximum", bounds: ReplicaBounds{Min: n(0), Max: n(1)}, min: n(2),
			raised:  []string{"data.horizontalPodAutoscaler: spec.minReplicas 0 is below the minimum of 2"},
			invalid: []string{"data.horizontalPodAutoscaler: spec.maxReplicas 1 is below the minimum of 2 replicas"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.bounds.Check()
			if !reflect.DeepEqual(got.Min, tc.min) {
				t.Errorf("minimum in force %v, want %v", got.Min, tc.min)
			}
			if !reflect.DeepEqual(strs(got.Raised), tc.raised) {
				t.Errorf("raised %q, want %q", strs(got.Raised), tc.raised)
			}
			if !reflect.DeepEqual(strs(got.Invalid), tc.invalid) {
				t.Errorf("invalid %q, want %q", strs(got.Invalid), tc.invalid)
			}
		})
	}
}
