// Package docs generates the README's reference tables from the data the operator runs
// on, so that the documentation cannot drift from the code: `make docs` rewrites them and
// the test in this package fails while they are stale.
package docs

import (
	"fmt"
	"strings"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// AllowlistMarkdown renders the allowlist as the README's table, so that the docs are
// generated from the same data the reconciler and the webhook use.
func AllowlistMarkdown() string {
	var b strings.Builder
	b.WriteString("| data key | resource | allowed field paths |\n|---|---|---|\n")
	kinds := map[v1alpha1.DataKey]string{
		v1alpha1.DataKeyDeployment:              "Deployment",
		v1alpha1.DataKeyService:                 "Service",
		v1alpha1.DataKeyHorizontalPodAutoscaler: "HorizontalPodAutoscaler",
		v1alpha1.DataKeyPodDisruptionBudget:     "PodDisruptionBudget",
	}
	for _, key := range v1alpha1.DataKeys {
		paths := make([]string, 0, len(v1alpha1.Allowlist[key]))
		for _, p := range v1alpha1.Allowlist[key] {
			paths = append(paths, "`"+p+"`")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", key, kinds[key], strings.Join(paths, "<br>"))
	}
	return b.String()
}

// PolicyMarkdown renders the class policy's fields as the README's table.
func PolicyMarkdown() string {
	var b strings.Builder
	b.WriteString("| field | type | meaning |\n|---|---|---|\n")
	for _, row := range v1alpha1.PolicyFields {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", strings.ReplaceAll(row.Field, ", ", "`, `"), row.Type, row.Meaning)
	}
	return b.String()
}
