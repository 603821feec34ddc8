package v1alpha1

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var updateReadme = flag.Bool("update", false, "rewrite the README's allowlist table from the Allowlist")

const (
	tableStart = "<!-- allowlist:start (generated from api/v1alpha1.Allowlist by `make docs`) -->\n"
	tableEnd   = "<!-- allowlist:end -->"
)

func TestReadmeAllowlistTableMatchesTheAllowlist(t *testing.T) {
	const path = "../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, tableStart)
	end := strings.Index(text, tableEnd)
	if start < 0 || end < start {
		t.Fatalf("README.md has no allowlist table between %q and %q", tableStart, tableEnd)
	}
	want := AllowlistMarkdown()
	got := text[start+len(tableStart) : end]
	if got == want {
		return
	}
	if *updateReadme {
		if err := os.WriteFile(path, []byte(text[:start+len(tableStart)]+want+text[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("README.md's allowlist table is stale; run `make docs`. Want:\n%s", want)
}

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
