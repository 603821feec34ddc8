package docs

import (
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

var updateReadme = flag.Bool("update", false, "rewrite the README's generated tables from the code")

const readmePath = "../../README.md"

// generatedTables are the README's tables, each between its markers, and what renders them.
var generatedTables = []struct {
	start, end string
	render     func() string
}{
	{"<!-- allowlist:start (generated from api/v1alpha1.Allowlist by `make docs`) -->\n", "<!-- allowlist:end -->", AllowlistMarkdown},
	{"<!-- policy:start (generated from api/v1alpha1.PolicyFields by `make docs`) -->\n", "<!-- policy:end -->", PolicyMarkdown},
}

func TestReadmeTablesMatchTheCode(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	for _, table := range generatedTables {
		start := strings.Index(text, table.start)
		end := strings.Index(text, table.end)
		if start < 0 || end < start {
			t.Fatalf("README.md has no table between %q and %q", table.start, table.end)
		}
		want := table.render()
		if text[start+len(table.start):end] == want {
			continue
		}
		if !*updateReadme {
			t.Errorf("README.md's table after %q is stale; run `make docs`. Want:\n%s", table.start, want)
			continue
		}
		text = text[:start+len(table.start)] + want + text[end:]
	}
	if *updateReadme {
		if err := os.WriteFile(readmePath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEveryPolicyFieldIsDocumented fails when Policy or PolicyTier gains a field the
// README's table does not describe.
func TestEveryPolicyFieldIsDocumented(t *testing.T) {
	documented := map[string]bool{}
	for _, row := range v1alpha1.PolicyFields {
		for _, name := range strings.Split(row.Field, ", ") {
			documented[name] = true
		}
	}
	for prefix, typ := range map[string]reflect.Type{"": reflect.TypeFor[v1alpha1.Policy](), "tiers[].": reflect.TypeFor[v1alpha1.PolicyTier]()} {
		for field := range typ.Fields() {
			name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
			if !documented[prefix+name] {
				t.Errorf("policy field %s%s has no row in v1alpha1.PolicyFields", prefix, name)
			}
		}
	}
}
