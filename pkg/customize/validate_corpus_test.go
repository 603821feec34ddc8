package customize

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// allowedSamples holds a value of the right type for every allowlisted path.
var allowedSamples = map[string]string{
	"metadata.labels":                    "{team: edge}",
	"metadata.annotations":               "{owner: platform}",
	"spec.replicas":                      "3",
	"spec.template.metadata.labels":      "{team: edge}",
	"spec.template.metadata.annotations": "{proxy.istio.io/config: '{}'}",
	"spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms": "[{matchExpressions: [{key: pool, operator: In, values: [gw]}]}]",
	"spec.template.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution":                  "[{weight: 1, preference: {matchExpressions: [{key: pool, operator: In, values: [gw]}]}}]",
	"spec.template.spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution":                    "[{topologyKey: zone, labelSelector: {matchLabels: {a: b}}}]",
	"spec.template.spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution":                   "[{weight: 1, podAffinityTerm: {topologyKey: zone}}]",
	"spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution":                "[{topologyKey: kubernetes.io/hostname}]",
	"spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution":               "[{weight: 100, podAffinityTerm: {topologyKey: kubernetes.io/hostname}}]",
	"spec.template.spec.containers.resizePolicy":                                                                "[{resourceName: cpu, restartPolicy: NotRequired}]",
	"spec.template.spec.containers.resources.limits":                                                            "{cpu: '2', memory: 1Gi}",
	"spec.template.spec.containers.resources.requests":                                                          "{cpu: 500m, memory: 512Mi}",
	"spec.template.spec.containers.stdin":                                                                       "false",
	"spec.template.spec.containers.stdinOnce":                                                                   "false",
	"spec.template.spec.nodeSelector":                                                                           "{agentpool: gateways}",
	"spec.template.spec.nodeName":                                                                               "node-1",
	"spec.template.spec.tolerations":                                                                            "[{key: dedicated, operator: Equal, value: gw, effect: NoSchedule}]",
	"spec.template.spec.topologySpreadConstraints":                                                              "[{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: ScheduleAnyway}]",
	"spec.type":                                          "ClusterIP",
	"spec.loadBalancerSourceRanges":                      "[10.0.0.0/8]",
	"spec.loadBalancerClass":                             "example.com/internal",
	"spec.externalTrafficPolicy":                         "Local",
	"spec.internalTrafficPolicy":                         "Local",
	"spec.behavior.scaleUp.stabilizationWindowSeconds":   "0",
	"spec.behavior.scaleUp.selectPolicy":                 "Max",
	"spec.behavior.scaleUp.policies":                     "[{type: Pods, value: 4, periodSeconds: 15}]",
	"spec.behavior.scaleDown.stabilizationWindowSeconds": "300",
	"spec.behavior.scaleDown.selectPolicy":               "Min",
	"spec.behavior.scaleDown.policies":                   "[{type: Percent, value: 10, periodSeconds: 60}]",
	"spec.metrics":                                       "[{type: Resource, resource: {name: memory, target: {type: Utilization, averageUtilization: 70}}}]",
	"spec.minReplicas":                                   "2",
	"spec.maxReplicas":                                   "10",
	"spec.minAvailable":                                  "1",
	"spec.unhealthyPodEvictionPolicy":                    "IfHealthyBudget",
}

// fragmentFor writes the YAML that sets one dotted path, entering the container list.
func fragmentFor(key v1alpha1.DataKey, path, value string) string {
	parts := strings.Split(path, ".")
	var b strings.Builder
	indent := ""
	for i, part := range parts {
		last := i == len(parts)-1
		prefix := indent
		if key == v1alpha1.DataKeyDeployment && strings.Join(parts[:i], ".") == v1alpha1.ContainersPath {
			b.WriteString(indent + "- name: istio-proxy\n")
			indent += "  "
			prefix = indent
		}
		if last {
			fmt.Fprintf(&b, "%s%s: %s\n", prefix, part, value)
		} else {
			fmt.Fprintf(&b, "%s%s:\n", prefix, part)
		}
		indent += "  "
	}
	return b.String()
}

func TestValidatorAcceptsEveryAllowlistedPath(t *testing.T) {
	n := 0
	for key, paths := range v1alpha1.Allowlist {
		for _, path := range paths {
			value, ok := allowedSamples[path]
			if !ok {
				t.Fatalf("no sample value for %s", path)
			}
			n++
			t.Run(string(key)+" "+path, func(t *testing.T) {
				data := map[string]string{string(key): fragmentFor(key, path, value)}
				if v := Validate(data); !v.Allowed() {
					t.Fatalf("rejected:\n%s\n%q", data[string(key)], v.Violations)
				}
				if set, err := Parse("ns/cm", data); err != nil || len(set.Findings) > 0 {
					t.Fatalf("the filter would not keep it whole: %v %v", err, set)
				}
			})
		}
	}
	if n < 40 {
		t.Fatalf("only %d allowlisted paths tried", n)
	}
}

func TestValidatorRejectsEscalationAttempts(t *testing.T) {
	container := func(field string) string {
		return "spec:\n  template:\n    spec:\n      containers:\n      - name: istio-proxy\n        " + field + "\n"
	}
	pod := func(field string) string { return "spec:\n  template:\n    spec:\n      " + field + "\n" }
	cases := []struct {
		name, key, fragment, path string
	}{
		{"image", "deployment", container("image: attacker/proxy"), "spec.template.spec.containers[name=istio-proxy].image"},
		{"command", "deployment", container("command: [sh, -c, id]"), "spec.template.spec.containers[name=istio-proxy].command"},
		{"args", "deployment", container("args: [--inject]"), "spec.template.spec.containers[name=istio-proxy].args"},
		{"env", "deployment", container("env: [{name: PROXY_CONFIG, value: x}]"), "spec.template.spec.containers[name=istio-proxy].env"},
		{"securityContext", "deployment", container("securityContext: {runAsUser: 0}"), "spec.template.spec.containers[name=istio-proxy].securityContext"},
		{"privileged", "deployment", container("securityContext: {privileged: true}"), "spec.template.spec.containers[name=istio-proxy].securityContext"},
		{"volumeMounts", "deployment", container("volumeMounts: [{name: host, mountPath: /host}]"), "spec.template.spec.containers[name=istio-proxy].volumeMounts"},
		{"ports", "deployment", container("ports: [{containerPort: 22}]"), "spec.template.spec.containers[name=istio-proxy].ports"},
		{"another container", "deployment", "spec:\n  template:\n    spec:\n      containers:\n      - name: miner\n        image: x\n", "spec.template.spec.containers[name=miner]"},
		{"a container named by a number", "deployment", "spec:\n  template:\n    spec:\n      containers:\n      - name: 7\n", "spec.template.spec.containers[name=7]"},
		{"hostNetwork", "deployment", pod("hostNetwork: true"), "spec.template.spec.hostNetwork"},
		{"hostPID", "deployment", pod("hostPID: true"), "spec.template.spec.hostPID"},
		{"hostIPC", "deployment", pod("hostIPC: true"), "spec.template.spec.hostIPC"},
		{"volumes", "deployment", pod("volumes: [{name: host, hostPath: {path: /}}]"), "spec.template.spec.volumes"},
		{"serviceAccountName", "deployment", pod("serviceAccountName: admin"), "spec.template.spec.serviceAccountName"},
		{"automountServiceAccountToken", "deployment", pod("automountServiceAccountToken: true"), "spec.template.spec.automountServiceAccountToken"},
		{"initContainers", "deployment", pod("initContainers: [{name: x, image: y}]"), "spec.template.spec.initContainers"},
		{"ephemeralContainers", "deployment", pod("ephemeralContainers: [{name: x, image: y}]"), "spec.template.spec.ephemeralContainers"},
		{"pod securityContext", "deployment", pod("securityContext: {sysctls: [{name: kernel.x, value: '1'}]}"), "spec.template.spec.securityContext"},
		{"priorityClassName", "deployment", pod("priorityClassName: system-node-critical"), "spec.template.spec.priorityClassName"},
		{"selector", "deployment", "spec:\n  selector: {matchLabels: {app: other}}\n", "spec.selector"},
		{"a reserved pod label", "deployment", "spec:\n  template:\n    metadata:\n      labels: {gateway.networking.k8s.io/gateway-name: other}\n", "spec.template.metadata.labels[gateway.networking.k8s.io/gateway-name]"},
		{"a patch directive", "deployment", "spec:\n  template:\n    spec:\n      tolerations:\n      - $patch: replace\n", "spec.template.spec.tolerations[0].$patch"},
		{"a delete directive", "service", "metadata:\n  $deleteFromPrimitiveList/finalizers: [x]\n", "metadata.$deleteFromPrimitiveList/finalizers"},
		{"Service ports", "service", "spec:\n  ports: [{port: 22, targetPort: 22}]\n", "spec.ports"},
		{"Service selector", "service", "spec:\n  selector: {app: database}\n", "spec.selector"},
		{"Service externalIPs", "service", "spec:\n  externalIPs: [203.0.113.9]\n", "spec.externalIPs"},
		{"Service clusterIP", "service", "spec:\n  clusterIP: None\n", "spec.clusterIP"},
		{"HPA scaleTargetRef", "horizontalPodAutoscaler", "spec:\n  scaleTargetRef: {kind: Deployment, name: coredns}\n", "spec.scaleTargetRef"},
		{"PDB selector", "podDisruptionBudget", "spec:\n  selector: {matchLabels: {k8s-app: kube-dns}}\n", "spec.selector"},
		{"PDB maxUnavailable", "podDisruptionBudget", "spec:\n  maxUnavailable: 0\n", "spec.maxUnavailable"},
		{"name", "deployment", "metadata:\n  name: coredns\n", "metadata.name"},
		{"namespace", "service", "metadata:\n  namespace: kube-system\n", "metadata.namespace"},
		{"ownerReferences", "horizontalPodAutoscaler", "metadata:\n  ownerReferences: []\n", "metadata.ownerReferences"},
		{"finalizers", "podDisruptionBudget", "metadata:\n  finalizers: [x]\n", "metadata.finalizers"},
		{"a non-string key", "deployment", "spec:\n  template:\n    spec:\n      1: x\n", "spec.template.spec.1"},
		{"a JSON fragment", "deployment", `{"spec": {"template": {"spec": {"hostNetwork": true}}}}`, "spec.template.spec.hostNetwork"},
		{"deep nesting under an off-list field", "deployment", "spec:\n  template:\n    spec:\n      volumes:\n" + strings.Repeat("        - ", 1) + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n", "spec.template.spec.volumes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Validate(map[string]string{tc.key: tc.fragment})
			if v.Allowed() {
				t.Fatalf("admitted:\n%s", tc.fragment)
			}
			want := "data." + tc.key + ": " + tc.path + " "
			found := false
			for _, violation := range v.Violations {
				found = found || strings.HasPrefix(violation, want)
			}
			if !found {
				t.Fatalf("violations %q do not name %q", v.Violations, want)
			}
		})
	}
}

func TestValidatorBoundsHostileInput(t *testing.T) {
	lol := `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`
	cases := []struct {
		name, fragment, want string
	}{
		{"a billion laughs", lol, "data.deployment: not valid YAML"},
		{"an alias smuggling an off-list field", "x: &x {hostNetwork: true}\nspec:\n  template:\n    spec: *x\n", "spec.template.spec.hostNetwork"},
		{"deeply nested lists", strings.Repeat("[", 5000) + strings.Repeat("]", 5000), "must be a YAML mapping"},
		{"deeply nested mappings", strings.Repeat("{a: ", 2000) + "1" + strings.Repeat("}", 2000), "data.deployment: a is not allowed"},
		{"a value over 1 MiB", "metadata:\n  annotations:\n    big: " + strings.Repeat("x", 2<<20) + "\n  name: x\n", "metadata.name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			v := Validate(map[string]string{"deployment": tc.fragment})
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if v.Allowed() || !strings.Contains(strings.Join(v.Violations, "\n"), tc.want) {
				t.Fatalf("violations %q, want one saying %q", v.Violations, tc.want)
			}
			// Bounds generous enough for a loaded 2-core CI machine, far below what an
			// unbounded expansion would take.
			if elapsed > 5*time.Second {
				t.Errorf("took %v", elapsed)
			}
			if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 512<<20 {
				t.Errorf("allocated %d MiB", allocated>>20)
			}
		})
	}
}
