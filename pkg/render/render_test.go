package render

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/customize"
	"github.com/kubegate/istio-gateway-operator/pkg/meshconfig"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with the current output")

const (
	classDefaults = `
horizontalPodAutoscaler: |
  spec:
    minReplicas: 2
    maxReplicas: 5
podDisruptionBudget: |
  spec:
    minAvailable: 1
`
	caseA = `
deployment: |
  metadata:
    labels:
      test.azureservicemesh.io/deployment-config: "updated"
horizontalPodAutoscaler: |
  spec:
    minReplicas: 3
    maxReplicas: 6
podDisruptionBudget: |
  spec:
    minAvailable: 1
`
	caseB = `
horizontalPodAutoscaler: |
  spec:
    minReplicas: 2
    maxReplicas: 4
deployment: |
  metadata:
    labels:
      test.azureservicemesh.io/deployment-config: "updated-per-gateway"
`
)

// walkthroughGateway is the Gateway of the walkthrough's section 1.
func walkthroughGateway() *gatewayv1.Gateway {
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin-gateway", Namespace: "default", UID: types.UID("0b8c7f43-2a8e-4c4e-9f4b-6b1a1de1c0a1"), Generation: 1},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: "istio",
			Listeners: []gatewayv1.Listener{{
				Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromSame)}},
			}},
		},
	}
}

func layer(t *testing.T, source, data string) *customize.Set {
	t.Helper()
	m := map[string]string{}
	if err := yaml.Unmarshal([]byte(data), &m); err != nil {
		t.Fatal(err)
	}
	set, err := customize.Parse(source, m)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func inputs(gw *gatewayv1.Gateway, layers ...*customize.Set) Inputs {
	return Inputs{Gateway: gw, Proxy: revisionProxy(""), Layers: layers}
}

// revisionMesh and revisionValues are a revision's mesh config and injector values as
// Istio's chart writes them for a multi-cluster, multi-network mesh.
const (
	revisionMesh = `trustDomain: corp.example.org
defaultConfig:
  discoveryAddress: istiod-asm-1-26.aks-istio-system.svc:15012
  meshId: corp-mesh
  proxyMetadata:
    ISTIO_META_DNS_CAPTURE: "true"
    BOOTSTRAP_XDS_AGENT: "true"
  image:
    imageType: distroless
`
	revisionValues = `{"revision":"asm-1-26","global":{"hub":"mcr.microsoft.com/oss/istio","tag":"1.26.3","meshID":"corp-mesh",
"network":"net-west","multiCluster":{"clusterName":"cluster-west"},"istioNamespace":"aks-istio-system","pilotCertProvider":"istiod"}}`
)

// revisionProxy is what a revision installed by Istio's chart in aks-istio-system says its
// proxies run with (hub docker.io/istio, tag 1.26.3), with Istio's defaults otherwise.
func revisionProxy(revision string) meshconfig.Proxy {
	p, err := meshconfig.Parse("", `{"global":{"hub":"docker.io/istio","tag":"1.26.3"}}`, revision, "aks-istio-system")
	if err != nil {
		panic(err)
	}
	return p
}

func TestRenderGolden(t *testing.T) {
	withInfrastructure := walkthroughGateway()
	withInfrastructure.Spec.Infrastructure = &gatewayv1.GatewayInfrastructure{
		Labels: map[gatewayv1.LabelKey]gatewayv1.LabelValue{"team": "payments", v1alpha1.GatewayNameLabel: "spoofed"},
		Annotations: map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{
			"service.beta.kubernetes.io/azure-load-balancer-internal":        "true",
			"service.beta.kubernetes.io/azure-load-balancer-internal-subnet": "my-subnet",
		},
	}
	manyListeners := walkthroughGateway()
	manyListeners.Spec.Listeners = []gatewayv1.Listener{
		{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType},
		{Name: "http.alt", Port: 8080, Protocol: gatewayv1.HTTPProtocolType},
		{Name: "https", Port: 443, Protocol: gatewayv1.HTTPSProtocolType},
		{Name: "https-other-host", Port: 443, Protocol: gatewayv1.HTTPSProtocolType},
		{Name: "status-port", Port: 9000, Protocol: gatewayv1.TCPProtocolType},
		{Name: "dns", Port: 53, Protocol: gatewayv1.UDPProtocolType},
	}
	manyListeners.Spec.Addresses = []gatewayv1.GatewaySpecAddress{{Value: "10.1.2.3"}}
	// A Service replaced to change its load balancer class asks for the address it had.
	replaced := walkthroughGateway()
	replaced.Annotations = map[string]string{v1alpha1.KeptAddressAnnotation: "172.18.255.200"}
	// Listeners that cannot be served get no Service port (their status says why).
	unservable := walkthroughGateway()
	unservable.Spec.Listeners = []gatewayv1.Listener{
		{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType},
		{Name: "invalid", Port: 1111, Protocol: "INVALID"},
		{Name: "on-the-status-port", Port: 15021, Protocol: gatewayv1.HTTPProtocolType},
		{Name: "tls-terminate", Port: 8443, Protocol: gatewayv1.TLSProtocolType},
		{Name: "udp-conflicting", Port: 9000, Protocol: gatewayv1.UDPProtocolType},
		{Name: "tcp-conflicting", Port: 9000, Protocol: gatewayv1.TCPProtocolType},
	}

	cases := []struct {
		name string
		in   func(t *testing.T) Inputs
	}{
		{"no-customizations", func(t *testing.T) Inputs { return inputs(walkthroughGateway()) }},
		{"class-defaults", func(t *testing.T) Inputs {
			return inputs(walkthroughGateway(), layer(t, "aks-istio-system/istio-gateway-class-defaults", classDefaults))
		}},
		{"case-a", func(t *testing.T) Inputs {
			return inputs(walkthroughGateway(), layer(t, "aks-istio-system/istio-gateway-class-defaults", caseA))
		}},
		{"case-a-and-b", func(t *testing.T) Inputs {
			return inputs(walkthroughGateway(), layer(t, "aks-istio-system/istio-gateway-class-defaults", caseA), layer(t, "default/gw-options", caseB))
		}},
		{"case-b-alone", func(t *testing.T) Inputs { return inputs(walkthroughGateway(), layer(t, "default/gw-options", caseB)) }},
		{"infrastructure-and-revision", func(t *testing.T) Inputs {
			in := inputs(withInfrastructure, layer(t, "aks-istio-system/istio-gateway-class-defaults", classDefaults))
			in.Revision = "asm-1-26"
			in.Proxy = revisionProxy("asm-1-26")
			return in
		}},
		{"proxy-container-and-scheduling", func(t *testing.T) Inputs {
			return inputs(walkthroughGateway(), layer(t, "default/gw-options", `
deployment: |
  spec:
    replicas: 3
    template:
      spec:
        nodeSelector: {agentpool: gateways}
        tolerations:
        - {key: dedicated, operator: Equal, value: gateways, effect: NoSchedule}
        containers:
        - name: istio-proxy
          resources:
            requests: {cpu: 500m, memory: 512Mi}
            limits: {cpu: "4"}
          image: attacker/proxy
          securityContext: {privileged: true}
        hostNetwork: true
service: |
  metadata:
    annotations: {service.beta.kubernetes.io/azure-load-balancer-internal: "true"}
  spec:
    type: ClusterIP
    externalIPs: [1.2.3.4]
    ports: [{port: 22}]
`))
		}},
		{"many-listeners", func(t *testing.T) Inputs { return inputs(manyListeners) }},
		{"replaced-service", func(t *testing.T) Inputs {
			return inputs(replaced, layer(t, "default/gw-options", "service: |\n  spec:\n    loadBalancerClass: example.com/second\n"))
		}},
		{"unservable-listeners", func(t *testing.T) Inputs { return inputs(unservable) }},
		{"revision-identity", func(t *testing.T) Inputs {
			// A multi-cluster, multi-network mesh with its own trust domain, as the
			// revision's mesh config and injector values say it.
			proxy, err := meshconfig.Parse(revisionMesh, revisionValues, "asm-1-26", "aks-istio-system")
			if err != nil {
				t.Fatal(err)
			}
			in := inputs(walkthroughGateway())
			in.Revision, in.Proxy = "asm-1-26", proxy
			return in
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Render(tc.in(t))
			if err != nil {
				t.Fatal(err)
			}
			objects := map[string]any{
				"serviceaccount":          res.ServiceAccount,
				"deployment":              res.Deployment,
				"service":                 res.Service,
				"horizontalpodautoscaler": res.HorizontalPodAutoscaler,
				"poddisruptionbudget":     res.PodDisruptionBudget,
			}
			for kind, obj := range objects {
				checkGolden(t, filepath.Join("testdata", kind, tc.name+".yaml"), obj)
			}
		})
	}
}

func checkGolden(t *testing.T, path string, obj any) {
	t.Helper()
	var got []byte
	if reflect.ValueOf(obj).IsNil() {
		got = []byte("# must not exist\n")
	} else {
		var err error
		if got, err = yaml.Marshal(obj); err != nil {
			t.Fatal(err)
		}
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `make testdata` to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the rendering (run `make testdata` if the change is intended):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

func TestGatewayLevelWinsFieldByField(t *testing.T) {
	class := layer(t, "aks-istio-system/defaults", `
deployment: |
  metadata:
    labels: {from-class: "yes", shared: class}
  spec:
    template:
      spec:
        nodeSelector: {pool: class}
        containers:
        - name: istio-proxy
          resources:
            requests: {cpu: 200m, memory: 256Mi}
horizontalPodAutoscaler: |
  spec:
    minReplicas: 3
    maxReplicas: 6
`)
	gateway := layer(t, "default/gw-options", `
deployment: |
  metadata:
    labels: {shared: gateway}
  spec:
    template:
      spec:
        containers:
        - resources:
            requests: {cpu: 300m}
horizontalPodAutoscaler: |
  spec:
    maxReplicas: 4
`)
	res, err := Render(inputs(walkthroughGateway(), class, gateway))
	if err != nil {
		t.Fatal(err)
	}
	d := res.Deployment
	if got := d.Labels["shared"]; got != "gateway" {
		t.Errorf("shared label = %q, want the Gateway level's", got)
	}
	if got := d.Labels["from-class"]; got != "yes" {
		t.Errorf("class-only label = %q, want it kept", got)
	}
	if got := d.Spec.Template.Spec.NodeSelector["pool"]; got != "class" {
		t.Errorf("nodeSelector = %q, want the class level's", got)
	}
	proxy := onlyContainer(t, d)
	if got := proxy.Resources.Requests.Cpu().String(); got != "300m" {
		t.Errorf("cpu request = %s, want the Gateway level's 300m", got)
	}
	if got := proxy.Resources.Requests.Memory().String(); got != "256Mi" {
		t.Errorf("memory request = %s, want the class level's 256Mi", got)
	}
	if proxy.Image != "docker.io/istio/proxyv2:1.26.3" || len(proxy.Env) == 0 || proxy.ReadinessProbe == nil {
		t.Errorf("the proxy container lost rendered fields: %+v", proxy)
	}
	hpa := res.HorizontalPodAutoscaler
	if *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 4 {
		t.Errorf("HPA %d/%d, want min 3 from the class and max 4 from the Gateway", *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("replicas %d set while an HPA exists", *d.Spec.Replicas)
	}
}

func onlyContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("%d containers, want only %s", n, v1alpha1.ProxyContainerName)
	}
	return d.Spec.Template.Spec.Containers[0]
}

func TestMinReplicasFloor(t *testing.T) {
	cases := []struct {
		name     string
		hpa      string
		wantMin  int32
		adjusted bool
		wantErr  string
	}{
		{"one is raised to two", "spec: {minReplicas: 1, maxReplicas: 5}", 2, true, ""},
		{"zero is raised to two", "spec: {minReplicas: 0}", 2, true, ""},
		{"removing minReplicas means one, raised to two", "spec: {minReplicas: null}", 2, true, ""},
		{"two is kept", "spec: {minReplicas: 2}", 2, false, ""},
		{"a minimum above the maximum is refused", "spec: {minReplicas: 6, maxReplicas: 4}", 0, false, "spec.minReplicas 6 is greater than spec.maxReplicas 4"},
		{"a maximum below the floor is refused", "spec: {maxReplicas: 1}", 0, false, "spec.maxReplicas 1 is below the minimum of 2 replicas"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{"horizontalPodAutoscaler": tc.hpa}
			set, err := customize.Parse("default/gw-options", m)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Render(inputs(walkthroughGateway(), set))
			if tc.wantErr != "" {
				if err == nil || !customize.IsInvalid(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want an invalid customization saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := *res.HorizontalPodAutoscaler.Spec.MinReplicas; got != tc.wantMin {
				t.Errorf("minReplicas %d, want %d", got, tc.wantMin)
			}
			if got := len(res.Adjustments) > 0; got != tc.adjusted {
				t.Errorf("adjustments %v, want adjusted=%v", res.Adjustments, tc.adjusted)
			}
		})
	}
}

func TestHPAAndPDBExistOnlyWhenAskedFor(t *testing.T) {
	res, err := Render(inputs(walkthroughGateway(), layer(t, "default/gw-options", "deployment: |\n  spec:\n    replicas: 3\n")))
	if err != nil {
		t.Fatal(err)
	}
	if res.HorizontalPodAutoscaler != nil || res.PodDisruptionBudget != nil {
		t.Fatalf("HPA or PDB rendered without their data keys")
	}
	if res.Deployment.Spec.Replicas == nil || *res.Deployment.Spec.Replicas != 3 {
		t.Fatalf("replicas %v, want 3 when no HPA exists", res.Deployment.Spec.Replicas)
	}
}

func TestReplicasLeftToTheHPAAreReported(t *testing.T) {
	class := layer(t, "aks-istio-system/istio-gateway-class-defaults", "horizontalPodAutoscaler: |\n  spec:\n    minReplicas: 2\n    maxReplicas: 4\n")
	gatewayLevel := layer(t, "default/gw-options", "deployment: |\n  spec:\n    replicas: 3\n")
	res, err := Render(inputs(walkthroughGateway(), class, gatewayLevel))
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployment.Spec.Replicas != nil {
		t.Errorf("replicas %d rendered beside an HPA, which owns the count", *res.Deployment.Spec.Replicas)
	}
	want := "data.deployment: spec.replicas from ConfigMap default/gw-options is not applied: a HorizontalPodAutoscaler (data.horizontalPodAutoscaler) sets the replicas"
	var got []string
	for _, f := range res.Adjustments {
		got = append(got, f.String())
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Errorf("adjustments %q, want one that starts %q", got, want)
	}
	if len(res.Adjustments) == 1 && res.Adjustments[0].Source != "" {
		t.Errorf("the finding names source %q: it would be told as a dropped field (FieldsNotAllowed), not as an adjustment (ValuesAdjusted)", res.Adjustments[0].Source)
	}

	// Without the HPA the same value is applied, and nothing is reported.
	res, err = Render(inputs(walkthroughGateway(), gatewayLevel))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Adjustments) != 0 {
		t.Errorf("adjustments %v without an HPA", res.Adjustments)
	}
}
