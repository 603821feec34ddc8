package docs

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
