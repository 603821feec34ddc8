package revision

import (
	"reflect"
	"sort"
	"testing"
)

func TestOrder(t *testing.T) {
	revisions := []string{"asm-1-26", "default", "asm-1-9", "asm-1-10", "canary", "asm-2-0", "1-25", "asm-1-25"}
	sort.Slice(revisions, func(i, j int) bool { return Less(revisions[i], revisions[j]) })
	want := []string{"canary", "default", "asm-1-9", "asm-1-10", "1-25", "asm-1-25", "asm-1-26", "asm-2-0"}
	if !reflect.DeepEqual(revisions, want) {
		t.Fatalf("order %v, want %v", revisions, want)
	}
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name      string
		label     string
		labelled  bool
		installed []string
		want      Ownership
	}{
		{"an unlabelled Gateway goes to the only revision", "", false, []string{"asm-1-25"}, Ownership{Owner: "asm-1-25"}},
		{"an unlabelled Gateway goes to the higher minor during an upgrade", "", false, []string{"asm-1-25", "asm-1-26"}, Ownership{Owner: "asm-1-26"}},
		{"minors compare as numbers", "", false, []string{"asm-1-9", "asm-1-10"}, Ownership{Owner: "asm-1-10"}},
		{"a label pins the Gateway to the older revision", "asm-1-25", true, []string{"asm-1-25", "asm-1-26"}, Ownership{Owner: "asm-1-25", Requested: "asm-1-25"}},
		{"a label naming a missing revision leaves the Gateway to no one; the highest reports it", "asm-1-24", true, []string{"asm-1-25", "asm-1-26"},
			Ownership{Reporter: "asm-1-26", Requested: "asm-1-24"}},
		{"nothing installed", "", false, nil, Ownership{}},
		{"an empty label means the default revision", "", true, []string{"default", "asm-1-26"}, Ownership{Owner: "default", Requested: "default"}},
		{"a versioned revision outranks default", "", false, []string{"default", "asm-1-26"}, Ownership{Owner: "asm-1-26"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.label, tc.labelled, tc.installed); got != tc.want {
				t.Fatalf("%+v, want %+v", got, tc.want)
			}
		})
	}
}
