package v1alpha1

// Labels and annotations users put on their objects.
const (
	// DefaultsForClassLabel marks the class-level defaults ConfigMap; its value is the
	// GatewayClass the defaults apply to.
	DefaultsForClassLabel = "gateway.istio.io/defaults-for-class"
	// RevisionLabel pins a Gateway to one control-plane revision and records, on generated
	// resources, which revision renders them.
	RevisionLabel = "istio.io/rev"
	// ReplaceOnImmutableChangeAnnotation, set to "true" on a Gateway, lets the operator
	// replace its Service when a change cannot be made in place (spec.loadBalancerClass):
	// the old Service is deleted and a new one asks for the address the old one had. Without
	// it such a change is only reported, because a new Service costs a new load balancer.
	ReplaceOnImmutableChangeAnnotation = "gateway.istio.io/replace-on-immutable-change"
)

// Labels the operator puts on what it generates, so that it can find its objects and
// never takes over one it did not create.
const (
	// ManagedLabel marks generated resources; its value names the operator.
	ManagedLabel = "gateway.istio.io/managed"
	// ManagedLabelValue is ManagedLabel's value on everything this operator generates.
	ManagedLabelValue = "istio-gateway-operator"
	// GatewayNameLabel selects a Gateway's pods and names the Gateway on every generated
	// resource, as Gateway API (GEP-1762) prescribes.
	GatewayNameLabel = "gateway.networking.k8s.io/gateway-name"
	// GatewayClassNameLabel names the class on every generated resource (GEP-1762).
	GatewayClassNameLabel = "gateway.networking.k8s.io/gateway-class-name"
	// KeptAddressAnnotation is written on a Gateway before its Service is replaced: the
	// load balancer address the old Service had, which the new one asks for (as
	// spec.loadBalancerIP) while spec.addresses asks for none. It survives an operator
	// restart between the deletion and the creation; users remove it to stop asking.
	KeptAddressAnnotation = "gateway.istio.io/kept-address"
	// ClassDefaultsEnsuredAnnotation is written on a GatewayClass once its class defaults
	// ConfigMap has been created (or found in place); its value names that ConfigMap. The
	// decision lives in the cluster, so that a ConfigMap the platform team deleted stays
	// deleted through restarts and leader failovers; users remove the annotation to have the
	// ConfigMap created again.
	ClassDefaultsEnsuredAnnotation = "gateway.istio.io/class-defaults-ensured"
)

// Defaults shared by the operator's flags, its manifests and the docs.
const (
	// DefaultGatewayClassName is the class the managed add-on serves.
	DefaultGatewayClassName = "istio"
	// ControllerName is the GatewayClass controllerName the operator answers to.
	ControllerName = "istio.io/gateway-controller"
	// DefaultSystemNamespace is where the control plane and the class defaults live.
	DefaultSystemNamespace = "aks-istio-system"
	// FieldManager is the server-side apply field owner of the default revision's writes;
	// other revisions append "-<revision>" (see FieldManagerFor).
	FieldManager = "istio-gateway-operator"
	// GeneratedNameSuffix is appended to a Gateway's name, with a dash, to name the
	// resources generated for it: "<gateway>-istio".
	GeneratedNameSuffix = "istio"
	// ProxyContainerName is the one container of a gateway pod; Deployment fragments
	// merge into it by this name.
	ProxyContainerName = "istio-proxy"
)

// DataKey names one customization fragment in a ConfigMap's data.
type DataKey string

// The data keys a customization ConfigMap may hold; any other key is reported as unknown.
const (
	DataKeyDeployment              DataKey = "deployment"
	DataKeyService                 DataKey = "service"
	DataKeyHorizontalPodAutoscaler DataKey = "horizontalPodAutoscaler"
	DataKeyPodDisruptionBudget     DataKey = "podDisruptionBudget"
)

// DataKeys lists the data keys in the order their resources are rendered and reported.
var DataKeys = []DataKey{
	DataKeyDeployment,
	DataKeyService,
	DataKeyHorizontalPodAutoscaler,
	DataKeyPodDisruptionBudget,
}

// MinHPAReplicas is the lowest HPA minReplicas the operator applies: a single gateway pod
// would make every node drain or rollout an ingress outage.
const MinHPAReplicas int32 = 2

// ClassDefaultsConfigMapName names the class-level defaults ConfigMap the operator creates
// when it is missing: "istio-gateway-class-defaults" for the istio class.
func ClassDefaultsConfigMapName(className string) string {
	return className + "-gateway-class-defaults"
}

// RevisionLeaseLabel marks the Lease through which each revision's operator announces that
// it is installed; its value is the revision.
const RevisionLeaseLabel = "gateway.istio.io/operator-revision"

// FieldManagerFor is the field manager of one revision's operator, so that
// `kubectl get --show-managed-fields` tells which revision wrote what.
func FieldManagerFor(revision string) string {
	if revision == "" {
		return FieldManager
	}
	return FieldManager + "-" + revision
}
