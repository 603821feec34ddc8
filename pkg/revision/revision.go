// Package revision decides which control-plane revision owns a Gateway. Every operator
// instance runs the same pure functions over the same set of installed revisions, so all
// of them reach the same answer: one owner per Gateway, or none when its label names a
// revision that is not installed.
package revision

import (
	"regexp"
	"sort"
	"strconv"
)

// Default is the name of the revision an instance started without --revision serves.
const Default = "default"

// Name returns the revision an instance serves, naming the unnamed one.
func Name(revision string) string {
	if revision == "" {
		return Default
	}
	return revision
}

var versioned = regexp.MustCompile(`(\d+)-(\d+)$`)

// version extracts (major, minor) from names ending in "<major>-<minor>", such as
// asm-1-26 or 1-25.
func version(name string) (major, minor int, ok bool) {
	m := versioned.FindStringSubmatch(name)
	if m == nil {
		return 0, 0, false
	}
	major, errMajor := strconv.Atoi(m[1])
	minor, errMinor := strconv.Atoi(m[2])
	if errMajor != nil || errMinor != nil {
		return 0, 0, false
	}
	return major, minor, true
}

// Less orders revisions from oldest to newest: by major then minor version
// (asm-1-9 < asm-1-10 < asm-1-26); names without a version ("default", "canary") rank
// below every versioned one, among themselves by name; equal versions by name.
func Less(a, b string) bool {
	amaj, amin, aok := version(a)
	bmaj, bmin, bok := version(b)
	switch {
	case aok != bok:
		return !aok
	case aok && (amaj != bmaj):
		return amaj < bmaj
	case aok && (amin != bmin):
		return amin < bmin
	default:
		return a < b
	}
}

// Highest returns the newest of the installed revisions.
func Highest(installed []string) (string, bool) {
	if len(installed) == 0 {
		return "", false
	}
	sorted := append([]string(nil), installed...)
	sort.Slice(sorted, func(i, j int) bool { return Less(sorted[i], sorted[j]) })
	return sorted[len(sorted)-1], true
}

// Ownership is the decision for one Gateway.
type Ownership struct {
	// Owner is the revision that reconciles the Gateway; empty when none may.
	Owner string
	// Reporter is the revision that writes the Gateway's status when Owner is empty: the
	// highest installed, so that the orphan is told why; empty when nothing is installed.
	Reporter string
	// Requested is the revision the Gateway's label names, if any.
	Requested string
}

// Decide applies the ownership rule: a Gateway labelled istio.io/rev belongs to that
// revision if it is installed and to no one otherwise; an unlabelled Gateway belongs to the
// highest installed revision.
func Decide(label string, labelled bool, installed []string) Ownership {
	highest, any := Highest(installed)
	if !labelled {
		if !any {
			return Ownership{}
		}
		return Ownership{Owner: highest}
	}
	requested := label
	if requested == "" {
		requested = Default
	}
	for _, r := range installed {
		if r == requested {
			return Ownership{Owner: r, Requested: requested}
		}
	}
	return Ownership{Reporter: highest, Requested: requested}
}
