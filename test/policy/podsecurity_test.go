package policy

import (
	"os"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubegate/istio-gateway-operator/pkg/meshconfig"
	"github.com/kubegate/istio-gateway-operator/pkg/render"
)

func evaluate(t *testing.T, level api.Level, d *appsv1.Deployment) []string {
	t.Helper()
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	results := evaluator.EvaluatePod(api.LevelVersion{Level: level, Version: api.LatestVersion()}, &d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec)
	var failures []string
	for _, r := range results {
		if !r.Allowed {
			failures = append(failures, r.ForbiddenReason+": "+r.ForbiddenDetail)
		}
	}
	return failures
}

func TestGatewayPodsPassTheRestrictedPodSecurityStandard(t *testing.T) {
	gw := &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin-gateway", Namespace: "default", UID: types.UID("u")},
		Spec:       gatewayv1.GatewaySpec{GatewayClassName: "istio", Listeners: []gatewayv1.Listener{{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType}}},
	}
	res, err := render.Render(render.Inputs{Gateway: gw, Proxy: meshconfig.Proxy{Image: "proxy"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []api.Level{api.LevelBaseline, api.LevelRestricted} {
		if failures := evaluate(t, level, res.Deployment); len(failures) > 0 {
			t.Errorf("the gateway Deployment fails %s: %q", level, failures)
		}
	}
}

func TestTheManagerPassesTheRestrictedPodSecurityStandard(t *testing.T) {
	raw, err := os.ReadFile("../../config/manager/manager.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{}
	if err := yaml.Unmarshal([]byte(string(raw)[:indexOfSeparator(string(raw))]), d); err != nil {
		t.Fatal(err)
	}
	if d.Kind != "Deployment" {
		t.Fatalf("config/manager/manager.yaml starts with a %s, not the manager Deployment", d.Kind)
	}
	if failures := evaluate(t, api.LevelRestricted, d); len(failures) > 0 {
		t.Errorf("the manager Deployment fails restricted: %q", failures)
	}
}

func indexOfSeparator(s string) int {
	for i := 0; i+4 <= len(s); i++ {
		if s[i:i+4] == "\n---" {
			return i
		}
	}
	return len(s)
}
