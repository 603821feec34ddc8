package render

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/meshconfig"
	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

// deployment mirrors Istio's own gateway template (kube-gateway.yaml) in substance: one
// istio-proxy container in router mode, pointed at the revision's istiod.
func deployment(in Inputs, meta metav1.ObjectMeta, labels, annotations map[string]string) *appsv1.Deployment {
	gw := in.Gateway
	podLabels := map[string]string{
		"sidecar.istio.io/inject":             "false",
		"service.istio.io/canonical-name":     meta.Name,
		"service.istio.io/canonical-revision": "latest",
	}
	maps.Copy(podLabels, labels)
	revision := in.Revision
	if revision == "" {
		revision = defaultRevisionAnnotationValue
	}
	podAnnotations := map[string]string{}
	maps.Copy(podAnnotations, annotations)
	maps.Copy(podAnnotations, map[string]string{
		v1alpha1.RevisionLabel: revision,
		"prometheus.io/path":   "/stats/prometheus",
		"prometheus.io/port":   fmt.Sprint(metricsPort),
		"prometheus.io/scrape": "true",
	})
	// The network: the Gateway's own label (already on the pods with the other
	// infrastructure labels), else the revision's; istiod's template labels no pod with the
	// revision's network, and neither does this.
	network := podLabels[networkLabel]
	if network == "" {
		network = in.Proxy.Network
	}

	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.GatewayNameLabel: gw.Name}},
			Strategy: RolloutStrategy(),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnnotations},
				Spec: corev1.PodSpec{
					ServiceAccountName: meta.Name,
					SecurityContext: &corev1.PodSecurityContext{
						// Lets the non-root proxy bind listener ports below 1024.
						Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}},
						// The restricted Pod Security Standard asks for the runtime's filter.
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{proxyContainer(in, meta.Name, network)},
					Volumes:    proxyVolumes(),
				},
			},
		},
	}
}

// proxyContainer is the gateway's Envoy, as istiod's gateway template runs it: the router
// mode, its ports, requests and limits, probes, and the restricted security context.
func proxyContainer(in Inputs, name, network string) corev1.Container {
	return corev1.Container{
		Name:  v1alpha1.ProxyContainerName,
		Image: in.Proxy.Image,
		Args: []string{
			"proxy", "router",
			"--domain", "$(POD_NAMESPACE).svc.cluster.local",
			"--proxyLogLevel", "warning",
			"--proxyComponentLogLevel", "misc:error",
			"--log_output_level", "default:info",
		},
		Env: proxyEnv(name, in.Gateway.Namespace, in.Proxy, network),
		Ports: []corev1.ContainerPort{
			{Name: "metrics", ContainerPort: metricsPort, Protocol: corev1.ProtocolTCP},
			{Name: "status-port", ContainerPort: StatusPort, Protocol: corev1.ProtocolTCP},
			{Name: "http-envoy-prom", ContainerPort: envoyPrometheusPort, Protocol: corev1.ProtocolTCP},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("128Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("2"),
				corev1.ResourceMemory: resource.MustParse("1Gi"),
			},
		},
		StartupProbe:   readyProbe(30, 1, 1),
		ReadinessProbe: readyProbe(4, 0, 15),
		SecurityContext: &corev1.SecurityContext{
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			AllowPrivilegeEscalation: ptr.To(false),
			Privileged:               ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsUser:                ptr.To(proxyUID),
			RunAsGroup:               ptr.To(proxyUID),
			RunAsNonRoot:             ptr.To(true),
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "workload-socket", MountPath: "/var/run/secrets/workload-spiffe-uds"},
			{Name: "credential-socket", MountPath: "/var/run/secrets/credential-uds"},
			{Name: "workload-certs", MountPath: "/var/run/secrets/workload-spiffe-credentials"},
			{Name: "istiod-ca-cert", MountPath: "/var/run/secrets/istio"},
			{Name: "istio-data", MountPath: "/var/lib/istio/data"},
			{Name: "istio-envoy", MountPath: "/etc/istio/proxy"},
			{Name: "istio-token", MountPath: "/var/run/secrets/tokens"},
			{Name: "istio-podinfo", MountPath: "/etc/istio/pod"},
		},
	}
}

func readyProbe(failureThreshold, initialDelay, period int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path:   "/healthz/ready",
			Port:   intstr.FromInt32(StatusPort),
			Scheme: corev1.URISchemeHTTP,
		}},
		FailureThreshold:    failureThreshold,
		InitialDelaySeconds: initialDelay,
		PeriodSeconds:       period,
		SuccessThreshold:    1,
		TimeoutSeconds:      1,
	}
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path},
	}}
}

func resourceEnv(name, res string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: res, Divisor: resource.MustParse("1")},
	}}
}

// networkLabel names the mesh network a Gateway's pods are in; set on the Gateway, it
// overrides the revision's network, as in istiod's template.
const networkLabel = "topology.istio.io/network"

// proxyEnv is the istio-proxy container's environment in the order of istiod's gateway
// template, with the revision's identity: cluster, network, mesh and trust domain.
func proxyEnv(deploymentName, namespace string, proxy meshconfig.Proxy, network string) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: "PILOT_CERT_PROVIDER", Value: proxy.PilotCertProvider},
		{Name: "CA_ADDR", Value: proxy.CAAddress},
		fieldEnv("POD_NAME", "metadata.name"),
		fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		fieldEnv("INSTANCE_IP", "status.podIP"),
		fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
		fieldEnv("HOST_IP", "status.hostIP"),
		resourceEnv("ISTIO_CPU_LIMIT", "limits.cpu"),
		{Name: "PROXY_CONFIG", Value: proxy.ProxyConfig},
		{Name: "ISTIO_META_POD_PORTS", Value: "[]"},
		{Name: "ISTIO_META_APP_CONTAINERS"},
		resourceEnv("GOMEMLIMIT", "limits.memory"),
		resourceEnv("GOMAXPROCS", "limits.cpu"),
		{Name: "ISTIO_META_CLUSTER_ID", Value: proxy.ClusterID},
		fieldEnv("ISTIO_META_NODE_NAME", "spec.nodeName"),
		{Name: "ISTIO_META_INTERCEPTION_MODE", Value: "REDIRECT"},
	}
	if network != "" {
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_NETWORK", Value: network})
	}
	env = append(env,
		corev1.EnvVar{Name: "ISTIO_META_WORKLOAD_NAME", Value: deploymentName},
		corev1.EnvVar{Name: "ISTIO_META_OWNER", Value: "kubernetes://apis/apps/v1/namespaces/" + namespace + "/deployments/" + deploymentName},
	)
	if proxy.MeshID != "" {
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_MESH_ID", Value: proxy.MeshID})
	}
	if proxy.TrustDomain != "" {
		env = append(env, corev1.EnvVar{Name: "TRUST_DOMAIN", Value: proxy.TrustDomain})
	}
	for _, name := range slices.Sorted(maps.Keys(proxy.ProxyMetadata)) {
		env = append(env, corev1.EnvVar{Name: name, Value: proxy.ProxyMetadata[name]})
	}
	return env
}

func proxyVolumes() []corev1.Volume {
	emptyDir := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	return []corev1.Volume{
		emptyDir("workload-socket"),
		emptyDir("credential-socket"),
		emptyDir("workload-certs"),
		{Name: "istio-envoy", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		emptyDir("istio-data"),
		{Name: "istio-podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"}},
				{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.annotations"}},
			},
		}}},
		{Name: "istio-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience:          tokenAudience,
				ExpirationSeconds: ptr.To(tokenExpirationSeconds),
				Path:              "istio-token",
			}}},
		}}},
		{Name: "istiod-ca-cert", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: caRootCertConfigMap},
		}}},
	}
}

// service exposes the status port and one port per distinct port of the listeners that
// are served (status.ServedListeners); the first listener on a port names it, as Istio does.
func service(in Inputs, meta metav1.ObjectMeta) *corev1.Service {
	gw := in.Gateway
	ports := []corev1.ServicePort{{
		Name:        "status-port",
		Port:        StatusPort,
		TargetPort:  intstr.FromInt32(StatusPort),
		Protocol:    corev1.ProtocolTCP,
		AppProtocol: ptr.To("tcp"),
	}}
	seenPorts := map[int32]bool{StatusPort: true}
	seenNames := map[string]bool{"status-port": true}
	for i, l := range status.ServedListeners(gw.Spec.Listeners) {
		port := int32(l.Port)
		if seenPorts[port] {
			continue
		}
		seenPorts[port] = true
		name := servicePortName(l, i)
		if seenNames[name] {
			name = truncate(fmt.Sprintf("%s-%d", name, port), 63)
		}
		seenNames[name] = true
		// An explicit targetPort: left at zero, the API server would default it and the
		// operator would see its own field differ on every reconcile.
		sp := corev1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP}
		if l.Protocol == gatewayv1.UDPProtocolType {
			sp.Protocol = corev1.ProtocolUDP
		} else {
			sp.AppProtocol = ptr.To(strings.ToLower(string(l.Protocol)))
		}
		ports = append(ports, sp)
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta,
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeLoadBalancer,
			Selector:       map[string]string{v1alpha1.GatewayNameLabel: gw.Name},
			Ports:          ports,
			IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicyPreferDualStack),
		},
	}
	svc.Spec.LoadBalancerIP = ServiceAddress(gw)
	return svc
}

func servicePortName(l gatewayv1.Listener, index int) string {
	name := truncate(strings.ReplaceAll(string(l.Name), ".", "-"), 63)
	name = strings.Trim(name, "-")
	if name == "" {
		name = fmt.Sprintf("%s-%d", strings.ToLower(string(l.Protocol)), index)
	}
	return name
}

func truncate(s string, n int) string {
	if len(s) > n {
		return strings.TrimRight(s[:n], "-")
	}
	return s
}

func horizontalPodAutoscaler(meta metav1.ObjectMeta) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: meta,
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: meta.Name},
			MinReplicas:    ptr.To(DefaultMinReplicas),
			MaxReplicas:    DefaultMaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{
						Type:               autoscalingv2.UtilizationMetricType,
						AverageUtilization: ptr.To(DefaultCPUUtilization),
					},
				},
			}},
		},
	}
}

func podDisruptionBudget(meta metav1.ObjectMeta, gatewayName string) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta,
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.GatewayNameLabel: gatewayName}},
		},
	}
}

// RolloutStrategy keeps every serving gateway pod until its replacement is Ready: a rollout
// (a new proxy image, resources, a revision hand-over) never lowers the number of ready
// endpoints below the replicas it started with, and adds up to a quarter more pods (at
// least one) at a time. Kubernetes' default (25% unavailable) would take one pod in four
// out of the load balancer at once.
func RolloutStrategy() appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: new(intstr.FromInt32(0)),
			MaxSurge:       new(intstr.FromString("25%")),
		},
	}
}
