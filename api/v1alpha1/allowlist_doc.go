package v1alpha1

import (
	"fmt"
	"strings"
)

// AllowlistMarkdown renders the allowlist as the README's table, so that the docs are
// generated from the same data the reconciler and the webhook use.
func AllowlistMarkdown() string {
	var b strings.Builder
	b.WriteString("| data key | resource | allowed field paths |\n|---|---|---|\n")
	kinds := map[DataKey]string{
		DataKeyDeployment:              "Deployment",
		DataKeyService:                 "Service",
		DataKeyHorizontalPodAutoscaler: "HorizontalPodAutoscaler",
		DataKeyPodDisruptionBudget:     "PodDisruptionBudget",
	}
	for _, key := range DataKeys {
		paths := make([]string, 0, len(Allowlist[key]))
		for _, p := range Allowlist[key] {
			paths = append(paths, "`"+p+"`")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", key, kinds[key], strings.Join(paths, "<br>"))
	}
	return b.String()
}
