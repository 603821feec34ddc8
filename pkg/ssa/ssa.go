// Package ssa converts rendered objects into server-side apply configurations and decides,
// without an API call, whether an apply would change anything: the fields this operator
// owns on the live object (from its managedFields) are compared with what it would send.
package ssa

import (
	"encoding/json"
	"fmt"
	"reflect"

	jsonpatch "github.com/evanphx/json-patch/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ApplyConfiguration converts a rendered object into the apply configuration of its kind,
// without status or server-populated metadata, so that only fields the operator has an
// opinion on are sent and owned.
func ApplyConfiguration[AC any](obj any) (*AC, error) {
	m, err := sendable(obj)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	ac := new(AC)
	if err := json.Unmarshal(js, ac); err != nil {
		return nil, fmt.Errorf("decoding %T into %T: %w", obj, ac, err)
	}
	return ac, nil
}

func sendable(obj any) (map[string]any, error) {
	js, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", obj, err)
	}
	delete(m, "status")
	if meta, ok := m["metadata"].(map[string]any); ok {
		for _, k := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields", "selfLink"} {
			delete(meta, k)
		}
	}
	return m, nil
}

// Equal reports whether two apply configurations send the same fields and values; it
// compares their JSON, which is what the API server would receive.
func Equal(a, b any) (bool, error) {
	am, err := normalized(a)
	if err != nil {
		return false, err
	}
	bm, err := normalized(b)
	if err != nil {
		return false, err
	}
	return reflect.DeepEqual(am, bm), nil
}

func normalized(v any) (any, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	var out any
	if err := json.Unmarshal(js, &out); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", v, err)
	}
	if m, ok := out.(map[string]any); ok {
		delete(m, "status")
	}
	return pruneEmptyObjects(out), nil
}

// pruneEmptyObjects drops empty objects: the API server records no managed field for an
// empty struct such as a Deployment's `strategy: {}`, so sent and owned would never match.
func pruneEmptyObjects(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			child = pruneEmptyObjects(child)
			if m, ok := child.(map[string]any); ok && len(m) == 0 {
				delete(t, k)
				continue
			}
			t[k] = child
		}
		return t
	case []any:
		for i := range t {
			t[i] = pruneEmptyObjects(t[i])
		}
		return t
	default:
		return v
	}
}

// Change is the JSON merge patch (RFC 7386) that turns the fields this operator owns on
// an object into the desired ones: what an apply would change, for the log line that
// explains why an object is applied again. Lists appear whole, as a merge patch replaces
// them.
func Change(owned, desired any) string {
	from, errFrom := normalizedJSON(owned)
	to, errTo := normalizedJSON(desired)
	if errFrom != nil || errTo != nil {
		return fmt.Sprintf("not comparable: %v %v", errFrom, errTo)
	}
	patch, err := jsonpatch.CreateMergePatch(from, to)
	if err != nil {
		return fmt.Sprintf("not comparable: %v", err)
	}
	return string(patch)
}

func normalizedJSON(v any) ([]byte, error) {
	n, err := normalized(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(n)
}

// StatusWriterOf names a field manager other than me that owns, in the status subresource,
// the condition of type conditionType ("" when none does): the writer that last changed it,
// since an update or a forced apply that changes a field takes its ownership.
func StatusWriterOf(entries []metav1.ManagedFieldsEntry, me, conditionType string) string {
	key, err := json.Marshal(map[string]string{"type": conditionType})
	if err != nil {
		return ""
	}
	want := "k:" + string(key)
	for _, e := range entries {
		if e.Manager == me || e.Subresource != "status" || e.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Status struct {
				Conditions map[string]json.RawMessage `json:"f:conditions"`
			} `json:"f:status"`
		}
		if err := json.Unmarshal(e.FieldsV1.Raw, &fields); err != nil {
			continue
		}
		if _, ok := fields.Status.Conditions[want]; ok {
			return e.Manager
		}
	}
	return ""
}
