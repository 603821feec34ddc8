package render

import (
	"fmt"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/kubegate/istio-gateway-operator/pkg/customize"
)

// FuzzMergeGatewayLevelWinsAndIsIdempotent: where both levels set a field the Gateway's
// value is applied, the class's survives where only it sets one, and applying the Gateway
// level twice changes nothing.
func FuzzMergeGatewayLevelWinsAndIsIdempotent(f *testing.F) {
	f.Add(int32(3), int32(6), int32(4), "updated", "updated-per-gateway", "500m")
	f.Add(int32(2), int32(5), int32(9), "a", "b", "1")
	f.Add(int32(0), int32(1), int32(2), "", "x", "100m")
	f.Fuzz(func(t *testing.T, classMin, classMax, gatewayMax int32, classLabel, gatewayLabel, cpu string) {
		// The harness writes the values into YAML with %q; YAML reads Go's byte escapes
		// as code points, so only valid UTF-8 round-trips.
		if !utf8.ValidString(classLabel) || !utf8.ValidString(gatewayLabel) || !utf8.ValidString(cpu) {
			return
		}
		class, err := customize.Parse("aks-istio-system/defaults", map[string]string{
			"horizontalPodAutoscaler": fmt.Sprintf("spec: {minReplicas: %d, maxReplicas: %d}", classMin, classMax),
			"deployment":              fmt.Sprintf("metadata: {labels: {shared: %q, class-only: %q}}", classLabel, classLabel),
		})
		if err != nil {
			return
		}
		gateway, err := customize.Parse("default/gw-options", map[string]string{
			"horizontalPodAutoscaler": fmt.Sprintf("spec: {maxReplicas: %d}", gatewayMax),
			"deployment":              fmt.Sprintf("metadata: {labels: {shared: %q}}\nspec: {template: {spec: {containers: [{resources: {requests: {cpu: %q}}}]}}}", gatewayLabel, cpu),
		})
		if err != nil {
			return
		}
		once, errOnce := Render(inputs(walkthroughGateway(), class, gateway))
		twice, errTwice := Render(inputs(walkthroughGateway(), class, gateway, gateway))
		if (errOnce == nil) != (errTwice == nil) {
			t.Fatalf("applying the Gateway level twice changed the outcome: %v / %v", errOnce, errTwice)
		}
		if errOnce != nil {
			if !customize.IsInvalid(errOnce) {
				t.Fatalf("a render error that is not the user's: %v", errOnce)
			}
			return
		}
		if !reflect.DeepEqual(once, twice) {
			t.Fatal("applying the Gateway level twice changed the result")
		}
		if got := once.Deployment.Labels["shared"]; got != gatewayLabel {
			t.Fatalf("shared label %q, want the Gateway level's %q", got, gatewayLabel)
		}
		if got := once.Deployment.Labels["class-only"]; got != classLabel {
			t.Fatalf("class-only label %q, want %q", got, classLabel)
		}
		if got := once.HorizontalPodAutoscaler.Spec.MaxReplicas; got != gatewayMax {
			t.Fatalf("maxReplicas %d, want the Gateway level's %d", got, gatewayMax)
		}
		if got := *once.HorizontalPodAutoscaler.Spec.MinReplicas; got < 2 {
			t.Fatalf("minReplicas %d below the floor", got)
		}
		if n := len(once.Deployment.Spec.Template.Spec.Containers); n != 1 {
			t.Fatalf("%d containers", n)
		}
	})
}
