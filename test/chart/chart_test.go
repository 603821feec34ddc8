// Package chart checks the Helm chart (charts/istio-gateway-operator) against the kustomize
// manifests under config/, which the envtest, e2e and policy suites test: the chart lints,
// its schema refuses bad values, and with its default values it renders exactly the objects
// of config/default (and of config/with-cert-manager with webhook.certificates=cert-manager),
// so that the two install paths cannot drift apart.
package chart

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
	"github.com/kubegate/istio-gateway-operator/test/localcluster"
)

// helmOnlyLabels are the labels Helm charts conventionally add and kustomize has no
// counterpart for; the comparison ignores them and nothing else.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance"}

// release is what the README installs: the release name and the control-plane namespace.
const release = "istio-gateway-operator"

type tools struct{ root, helm, kubectl, chart string }

func findTools(t *testing.T) tools {
	t.Helper()
	root, err := localcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	tl := tools{
		root:    root,
		helm:    filepath.Join(root, "bin", "helm", "helm"),
		kubectl: filepath.Join(root, "bin", "k8s", localcluster.K8sVersion, "kubectl"),
		chart:   filepath.Join(root, "charts", "istio-gateway-operator"),
	}
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		tl.kubectl = filepath.Join(dir, "kubectl")
	}
	for _, need := range []struct{ file, make string }{{tl.helm, "make helm"}, {tl.kubectl, "make k8s-assets"}} {
		if _, err := os.Stat(need.file); err != nil {
			t.Fatalf("%s is missing: run `%s` first", need.file, need.make)
		}
	}
	return tl
}

func run(name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// template renders the chart as `helm install` would, with --set values.
func (tl tools) template(t *testing.T, set ...string) map[string]map[string]any {
	t.Helper()
	args := []string{"template", release, tl.chart, "--namespace", v1alpha1.DefaultSystemNamespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := run(tl.helm, args...)
	if err != nil {
		t.Fatal(err)
	}
	return objects(t, out)
}

func (tl tools) kustomize(t *testing.T, dir string) map[string]map[string]any {
	t.Helper()
	out, err := run(tl.kubectl, "kustomize", filepath.Join(tl.root, dir))
	if err != nil {
		t.Fatal(err)
	}
	return objects(t, out)
}

// objects keys every object of a multi-document YAML stream by kind, namespace and name,
// without the Helm-only labels.
func objects(t *testing.T, stream string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	for {
		var obj map[string]any
		if err := decoder.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("decoding rendered manifests: %v", err)
		}
		if len(obj) == 0 {
			continue
		}
		meta, _ := obj["metadata"].(map[string]any)
		if labels, ok := meta["labels"].(map[string]any); ok {
			for _, key := range helmOnlyLabels {
				delete(labels, key)
			}
		}
		key := fmt.Sprintf("%s %v/%v", obj["kind"], meta["namespace"], meta["name"])
		if _, dup := out[key]; dup {
			t.Errorf("%s rendered twice", key)
		}
		out[key] = obj
	}
}

// sameObjects reports every object only one side has, and for each object both have, the
// merge patch that turns kustomize's into the chart's.
func sameObjects(t *testing.T, chart, kustomize map[string]map[string]any) {
	t.Helper()
	var keys []string
	for key := range kustomize {
		keys = append(keys, key)
	}
	for key := range chart {
		if _, ok := kustomize[key]; !ok {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		c, inChart := chart[key]
		k, inKustomize := kustomize[key]
		switch {
		case !inChart:
			t.Errorf("%s: in config/ but not rendered by the chart", key)
		case !inKustomize:
			t.Errorf("%s: rendered by the chart but not in config/", key)
		default:
			cj, _ := json.Marshal(c)
			kj, _ := json.Marshal(k)
			if !jsonpatch.Equal(cj, kj) {
				patch, err := jsonpatch.CreateMergePatch(kj, cj)
				if err != nil {
					t.Fatal(err)
				}
				t.Errorf("%s: the chart differs from config/; merge patch from config/ to the chart:\n%s", key, patch)
			}
		}
	}
}

func TestChartLints(t *testing.T) {
	tl := findTools(t)
	for _, set := range [][]string{nil, {"webhook.certificates=cert-manager"}, {"revision=asm-1-26", "systemNamespace=aks-istio-system"}} {
		args := []string{"lint", "--strict", tl.chart}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		if out, err := run(tl.helm, args...); err != nil {
			t.Errorf("helm lint with %v: %v", set, err)
		} else if !strings.Contains(out, "0 chart(s) failed") {
			t.Errorf("helm lint with %v:\n%s", set, out)
		}
	}
}

func TestChartRendersWhatConfigDefaultInstalls(t *testing.T) {
	tl := findTools(t)
	sameObjects(t, tl.template(t), tl.kustomize(t, "config/default"))
}

func TestChartWithCertManagerRendersWhatConfigWithCertManagerInstalls(t *testing.T) {
	tl := findTools(t)
	sameObjects(t, tl.template(t, "webhook.certificates=cert-manager"), tl.kustomize(t, "config/with-cert-manager"))
}

// TestChartNamesARevisionsObjectsConsistently installs a second revision's release: every
// object carries the revision, and the names the manager is told (its flags) are the names
// the RBAC grants and the objects have, so that its webhook certificate can be kept.
func TestChartNamesARevisionsObjectsConsistently(t *testing.T) {
	tl := findTools(t)
	const rev = "asm-1-26"
	prefix := "istio-gateway-operator-" + rev + "-"
	rendered := tl.template(t, "revision="+rev)
	args := map[string]string{}
	for key, obj := range rendered {
		name := obj["metadata"].(map[string]any)["name"].(string)
		if !strings.HasPrefix(name, prefix) {
			t.Errorf("%s: a revision's object without the revision in its name", key)
		}
		if obj["kind"] == "Deployment" {
			container := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			for _, a := range container["args"].([]any) {
				flag, value, _ := strings.Cut(a.(string), "=")
				args[flag] = value
			}
		}
	}
	for flag, want := range map[string]string{
		"--revision":              rev,
		"--webhook-cert-secret":   prefix + "webhook-server-cert",
		"--webhook-configuration": prefix + "validating-webhook-configuration",
		"--webhook-service":       prefix + "webhook-service",
	} {
		if args[flag] != want {
			t.Errorf("manager flag %s=%q, want %q", flag, args[flag], want)
		}
	}
	for _, want := range []string{
		"Secret " + v1alpha1.DefaultSystemNamespace + "/" + args["--webhook-cert-secret"],
		"ValidatingWebhookConfiguration <nil>/" + args["--webhook-configuration"],
		"Service " + v1alpha1.DefaultSystemNamespace + "/" + args["--webhook-service"],
	} {
		if _, ok := rendered[want]; !ok {
			t.Errorf("the manager is told of %s, which the chart does not install", want)
		}
	}
	secretRule := rendered["Role "+v1alpha1.DefaultSystemNamespace+"/"+prefix+"webhook-cert-role"]["rules"].([]any)[0].(map[string]any)
	if names := fmt.Sprint(secretRule["resourceNames"]); names != "["+args["--webhook-cert-secret"]+"]" {
		t.Errorf("the certificate Role names %s, the manager writes %s", names, args["--webhook-cert-secret"])
	}
	// The default release's names are the manager's own defaults, so that a binary run by
	// hand against a chart install needs no flags; and its selectors must not reach the
	// revision's pods, whose webhook server has another CA.
	defaults := tl.template(t)
	revisionPods := podLabels(t, rendered)
	for key, obj := range defaults {
		var selector map[string]any
		switch obj["kind"] {
		case "Service":
			selector, _ = obj["spec"].(map[string]any)["selector"].(map[string]any)
		case "Deployment", "PodDisruptionBudget":
			selector, _ = obj["spec"].(map[string]any)["selector"].(map[string]any)["matchLabels"].(map[string]any)
		default:
			continue
		}
		matches := len(selector) > 0
		for k, v := range selector {
			matches = matches && revisionPods[k] == v
		}
		if matches {
			t.Errorf("%s of the default release selects the pods of revision %s (%v)", key, rev, selector)
		}
	}
	for _, key := range []string{
		"Secret " + v1alpha1.DefaultSystemNamespace + "/" + controllers.DefaultWebhookSecret,
		"ValidatingWebhookConfiguration <nil>/" + controllers.DefaultWebhookConfiguration,
		"Service " + v1alpha1.DefaultSystemNamespace + "/" + controllers.DefaultWebhookService,
	} {
		if _, ok := defaults[key]; !ok {
			t.Errorf("the default release has no %s", key)
		}
	}
}

func TestChartSchemaRefusesBadValues(t *testing.T) {
	tl := findTools(t)
	for set, want := range map[string]string{
		"webhook.certificates=vault": "webhook.certificates",
		"replicas=0":                 "replicas",
		"logLevel=verbose":           "logLevel",
		"revision=Not_A_Label":       "revision",
		"imageTag=dev":               "imageTag",
	} {
		_, err := run(tl.helm, "template", release, tl.chart, "--namespace", v1alpha1.DefaultSystemNamespace, "--set", set)
		if err == nil {
			t.Errorf("--set %s rendered; the schema should refuse it", set)
		} else if !strings.Contains(err.Error(), want) {
			t.Errorf("--set %s refused without naming %s: %v", set, want, err)
		}
	}
}

// podLabels are the pod template labels of the one Deployment rendered.
func podLabels(t *testing.T, rendered map[string]map[string]any) map[string]any {
	t.Helper()
	for _, obj := range rendered {
		if obj["kind"] == "Deployment" {
			return obj["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)["labels"].(map[string]any)
		}
	}
	t.Fatal("no Deployment rendered")
	return nil
}
