package v1alpha1

import (
	"strings"
	"testing"
)

func TestAllowlistIsWellFormed(t *testing.T) {
	for _, key := range DataKeys {
		paths := Allowlist[key]
		if len(paths) == 0 {
			t.Errorf("data key %s allows nothing", key)
		}
		seen := map[string]bool{}
		for _, p := range paths {
			if seen[p] {
				t.Errorf("%s lists %s twice", key, p)
			}
			seen[p] = true
			for _, other := range paths {
				if other != p && strings.HasPrefix(other, p+".") {
					t.Errorf("%s: %s is inside %s, which already allows it", key, other, p)
				}
			}
		}
	}
	for _, p := range Allowlist[DataKeyHorizontalPodAutoscaler] {
		if p == "spec.scaleTargetRef" {
			t.Error("the HPA target must stay the operator's")
		}
	}
	if len(Allowlist) != len(DataKeys) {
		t.Errorf("the allowlist has %d keys, DataKeys %d", len(Allowlist), len(DataKeys))
	}
}
