package customize

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// pathNode is one step of the allowlist as a tree: a leaf allows everything below it, and
// a keyed list is entered element by element.
type pathNode struct {
	children  map[string]*pathNode
	leaf      bool
	keyedList bool
}

var allowTrees = buildAllowTrees()

func buildAllowTrees() map[v1alpha1.DataKey]*pathNode {
	trees := make(map[v1alpha1.DataKey]*pathNode, len(v1alpha1.Allowlist))
	for key, paths := range v1alpha1.Allowlist {
		root := &pathNode{}
		for _, p := range paths {
			n := root
			for _, part := range strings.Split(p, ".") {
				if n.children == nil {
					n.children = map[string]*pathNode{}
				}
				child, ok := n.children[part]
				if !ok {
					child = &pathNode{}
					n.children[part] = child
				}
				n = child
			}
			n.leaf = true
		}
		for _, p := range v1alpha1.KeyedListPaths[key] {
			n := root
			for _, part := range strings.Split(p, ".") {
				n = n.children[part]
			}
			n.keyedList = true
		}
		trees[key] = root
	}
	return trees
}

func (n *pathNode) childNames() string {
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// filter walks one fragment against the allowlist of its data key and returns the part
// that may be applied; every refused field becomes a finding.
type filter struct {
	source   string
	key      v1alpha1.DataKey
	findings []Finding
}

func (f *filter) refuse(path, problem string) {
	f.findings = append(f.findings, Finding{Source: f.source, Key: string(f.key), Path: path, Problem: problem})
}

func joinPath(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (f *filter) object(path string, allowed *pathNode, in map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range sortedKeys(in) {
		v := in[k]
		p := joinPath(path, k)
		if strings.HasPrefix(k, "$") {
			f.refuse(p, "is a patch directive, which customizations may not use")
			continue
		}
		child := allowed.children[k]
		switch {
		case child == nil:
			where := "at the top level"
			if path != "" {
				where = "under " + path
			}
			f.refuse(p, fmt.Sprintf("is not allowed; allowed %s: %s", where, allowed.childNames()))
		case child.leaf:
			out[k] = f.leaf(p, v)
		case child.keyedList:
			if list := f.containers(p, child, v); len(list) > 0 {
				out[k] = list
			}
		default:
			m, ok := v.(map[string]any)
			if !ok {
				f.refuse(p, fmt.Sprintf("must be a mapping, not %s", describe(v)))
				continue
			}
			if sub := f.object(p, child, m); len(sub) > 0 {
				out[k] = sub
			}
		}
	}
	return out
}

// leaf keeps an allowed subtree, minus patch directives anywhere inside it and, for label
// maps, minus the labels the operator relies on.
func (f *filter) leaf(path string, v any) any {
	v = f.withoutDirectives(path, v)
	if !strings.HasSuffix(path, "metadata.labels") {
		return v
	}
	labels, ok := v.(map[string]any)
	if !ok {
		return v
	}
	for _, reserved := range v1alpha1.ReservedLabels {
		if _, set := labels[reserved]; set {
			f.refuse(fmt.Sprintf("%s[%s]", path, reserved), "is reserved: the operator sets it")
			delete(labels, reserved)
		}
	}
	return labels
}

func (f *filter) withoutDirectives(path string, v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for _, k := range sortedKeys(t) {
			if strings.HasPrefix(k, "$") {
				f.refuse(joinPath(path, k), "is a patch directive, which customizations may not use")
				continue
			}
			out[k] = f.withoutDirectives(joinPath(path, k), t[k])
		}
		return out
	case []any:
		out := make([]any, 0, len(t))
		for i, e := range t {
			out = append(out, f.withoutDirectives(fmt.Sprintf("%s[%d]", path, i), e))
		}
		return out
	default:
		return v
	}
}

// containers enters the container list: its only legal element is the proxy container,
// named explicitly or implied when the name is left out.
func (f *filter) containers(path string, allowed *pathNode, v any) []any {
	list, ok := v.([]any)
	if !ok {
		f.refuse(path, fmt.Sprintf("must be a list, not %s", describe(v)))
		return nil
	}
	var out []any
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			f.refuse(fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("must be a mapping, not %s", describe(e)))
			continue
		}
		name := v1alpha1.ProxyContainerName
		if raw, set := m["name"]; set {
			s, isString := raw.(string)
			if !isString || s != v1alpha1.ProxyContainerName {
				f.refuse(fmt.Sprintf("%s[name=%v]", path, raw), fmt.Sprintf("is not allowed; only the %s container can be customized", v1alpha1.ProxyContainerName))
				continue
			}
		}
		rest := make(map[string]any, len(m))
		for k, val := range m {
			if k != "name" {
				rest[k] = val
			}
		}
		elementPath := fmt.Sprintf("%s[name=%s]", path, name)
		if sub := f.object(elementPath, allowed, rest); len(sub) > 0 {
			sub["name"] = name
			out = append(out, sub)
		}
	}
	return out
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, int64, int:
		return "a number"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// AllowedPaths returns the allowlist of one data key, sorted, for docs and messages.
func AllowedPaths(key v1alpha1.DataKey) []string {
	paths := slices.Clone(v1alpha1.Allowlist[key])
	sort.Strings(paths)
	return paths
}
