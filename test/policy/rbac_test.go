// Package policy checks the operator's shipped manifests against its security promises:
// least-privilege RBAC and pod security.
package policy

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubegate/istio-gateway-operator/controllers"
)

// generated are the resources the operator writes, with the verbs each may need; anything
// else it may only read.
var allowedWrites = map[string][]string{
	"deployments":              {"create", "patch", "delete"},
	"services":                 {"create", "patch", "delete"},
	"serviceaccounts":          {"create", "patch", "delete"},
	"horizontalpodautoscalers": {"create", "patch", "delete"},
	"poddisruptionbudgets":     {"create", "patch", "delete"},
	// Only one annotation, the address kept through a Service replacement the Gateway
	// opted in to (gateway.istio.io/kept-address); never the spec.
	"gateways":              {"patch"},
	"gateways/status":       {"patch", "update"},
	"gateways/finalizers":   {"update"},
	"gatewayclasses/status": {"patch", "update"},
	// Parent status of HTTPRoutes, written only with --route-status (no istiod).
	"httproutes/status": {"patch", "update"},
	// Create: the default class; patch: only the class-defaults-ensured annotation.
	"gatewayclasses": {"create", "patch"},
	"events":         {"create", "patch"},
	"leases":         {"create", "patch", "update", "delete"},
	// Only the class defaults ConfigMap, and only in the system namespace (a Role).
	"configmaps": {"create"},
	// Only the webhook certificate's Secret and the webhook configuration whose caBundle
	// it keeps, by name (TestWebhookCertificateRBACNamesItsObjects).
	"secrets":                         {"create", "update", "patch"},
	"validatingwebhookconfigurations": {"update", "patch"},
}

// The objects config/webhookcert lets the operator write: the names its flags default to.
const (
	webhookSecret        = controllers.DefaultWebhookSecret
	webhookConfiguration = controllers.DefaultWebhookConfiguration
)

var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}

type roleDoc struct {
	Kind     string              `json:"kind"`
	Metadata map[string]any      `json:"metadata"`
	Rules    []rbacv1.PolicyRule `json:"rules"`
}

func readRoles(t *testing.T, paths ...string) []roleDoc {
	t.Helper()
	var out []roleDoc
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(raw, []byte("\n---")) {
			var r roleDoc
			if err := yaml.Unmarshal(doc, &r); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if r.Kind == "ClusterRole" || r.Kind == "Role" {
				out = append(out, r)
			}
		}
	}
	return out
}

func TestRBACIsLeastPrivilege(t *testing.T) {
	roles := readRoles(t, "../../config/rbac/role.yaml", "../../config/rbac/leader_election_role.yaml", "../../config/webhookcert/rbac.yaml")
	if len(roles) < 5 {
		t.Fatalf("found %d roles; expected the manager ClusterRole and Role, the leader-election Role and the webhook certificate's Role and ClusterRole", len(roles))
	}
	for _, role := range roles {
		for _, rule := range role.Rules {
			for _, field := range [][]string{rule.Verbs, rule.Resources, rule.APIGroups, rule.ResourceNames} {
				if slices.Contains(field, "*") {
					t.Errorf("%s %v has a wildcard: %+v", role.Kind, role.Metadata["name"], rule)
				}
			}
			for _, resource := range rule.Resources {
				// Listeners' certificateRefs are judged by reading the Secrets they name:
				// reading Secrets is all the operator may do with them, but for its own.
				if resource == "secrets" || strings.HasPrefix(resource, "secrets/") {
					if resource != "secrets" || !slices.Equal(rule.Verbs, []string{"get", "list", "watch"}) && !isWebhookSecretRule(role, rule) {
						t.Errorf("%s %v grants more than reading Secrets: %+v", role.Kind, role.Metadata["name"], rule)
					}
				}
				if resource == "validatingwebhookconfigurations" && !slices.Equal(rule.ResourceNames, []string{webhookConfiguration}) {
					t.Errorf("%s %v grants webhook configurations other than %s: %+v", role.Kind, role.Metadata["name"], webhookConfiguration, rule)
				}
				for _, verb := range rule.Verbs {
					if !slices.Contains(writeVerbs, verb) {
						continue
					}
					if !slices.Contains(allowedWrites[resource], verb) {
						t.Errorf("%s %v may %s %s, which the operator neither generates nor reports on", role.Kind, role.Metadata["name"], verb, resource)
					}
					if resource == "events" && slices.Contains(rule.APIGroups, "") && role.Kind != "Role" {
						t.Errorf("core/v1 Event writes (leader election's) must be confined to the system namespace by a Role, not a %s", role.Kind)
					}
					if resource == "configmaps" && role.Kind != "Role" {
						t.Errorf("ConfigMap writes must be confined to the system namespace by a Role, not a %s", role.Kind)
					}
				}
			}
		}
	}
}

// isWebhookSecretRule tells the two rules that keep the webhook certificate's Secret: in a
// Role (the operator's namespace only), read and write that one Secret by name, and create
// (which RBAC cannot restrict by name) to recreate it when deleted.
func isWebhookSecretRule(role roleDoc, rule rbacv1.PolicyRule) bool {
	if role.Kind != "Role" || role.Metadata["name"] != "webhook-cert-role" {
		return false
	}
	if slices.Equal(rule.ResourceNames, []string{webhookSecret}) {
		return slices.Equal(rule.Verbs, []string{"get", "list", "watch", "update", "patch"})
	}
	return len(rule.ResourceNames) == 0 && slices.Equal(rule.Verbs, []string{"create"})
}

// TestWebhookCertificateRBACNamesItsObjects pins what config/webhookcert grants, so that a
// change to it is a change to this list: exactly the certificate Secret and the webhook
// configuration, and the create that recreates the Secret.
func TestWebhookCertificateRBACNamesItsObjects(t *testing.T) {
	var got []string
	for _, role := range readRoles(t, "../../config/webhookcert/rbac.yaml") {
		for _, rule := range role.Rules {
			got = append(got, fmt.Sprintf("%s %v %v %v", role.Kind, rule.Resources, rule.ResourceNames, rule.Verbs))
		}
	}
	want := []string{
		"Role [secrets] [" + webhookSecret + "] [get list watch update patch]",
		"Role [secrets] [] [create]",
		"ClusterRole [validatingwebhookconfigurations] [" + webhookConfiguration + "] [get list watch update patch]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("config/webhookcert grants\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
