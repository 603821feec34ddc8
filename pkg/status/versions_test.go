package status

import (
	"strings"
	"testing"
)

func TestSupportedVersionCondition(t *testing.T) {
	all := func(v string) map[string]string {
		out := map[string]string{}
		for _, name := range RequiredCRDs {
			out[name] = v
		}
		return out
	}
	older := all("v1.6.3")
	older["httproutes.gateway.networking.k8s.io"] = "v1.4.0"
	missing := all("v1.6.0")
	delete(missing, "referencegrants.gateway.networking.k8s.io")
	unannotated := all("v1.6.3")
	unannotated["gateways.gateway.networking.k8s.io"] = ""
	cases := []struct {
		name     string
		versions map[string]string
		want     string
		says     string
	}{
		{"every CRD of the supported minor release", all("v1.6.1"), "True/SupportedVersion", "supported release v1.6.x"},
		{"a CRD of another release", older, "False/UnsupportedVersion", "httproutes.gateway.networking.k8s.io is of bundle version v1.4.0"},
		{"a CRD that is not installed", missing, "False/UnsupportedVersion", "referencegrants.gateway.networking.k8s.io is not installed"},
		{"a CRD without the annotation", unannotated, "False/UnsupportedVersion", "has no gateway.networking.k8s.io/bundle-version annotation"},
		{"a bundle version that is not a version", all("latest"), "False/UnsupportedVersion", `bundle version "latest", which is not a version`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := SupportedVersionCondition(tc.versions, 5)
			if got := string(c.Status) + "/" + c.Reason; got != tc.want || c.ObservedGeneration != 5 || !strings.Contains(c.Message, tc.says) {
				t.Errorf("%s (generation %d) %q, want %s saying %q", got, c.ObservedGeneration, c.Message, tc.want, tc.says)
			}
		})
	}
}
