package v1alpha1

// Allowlist is the one table of field paths a customization fragment may set, per data key.
// A path allows the whole subtree below it; anything else in a fragment is dropped by the
// reconciler and rejected by the webhook, and the README's table is checked against it.
// Paths are dotted and relative to the resource; a list on the way (containers) is entered
// element by element, each element matched by name to the proxy container.
var Allowlist = map[DataKey][]string{
	DataKeyDeployment: {
		"metadata.labels",
		"metadata.annotations",
		"spec.replicas",
		"spec.template.metadata.labels",
		"spec.template.metadata.annotations",
		"spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
		"spec.template.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution",
		"spec.template.spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution",
		"spec.template.spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution",
		"spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution",
		"spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution",
		"spec.template.spec.containers.resizePolicy",
		"spec.template.spec.containers.resources.limits",
		"spec.template.spec.containers.resources.requests",
		"spec.template.spec.containers.stdin",
		"spec.template.spec.containers.stdinOnce",
		"spec.template.spec.nodeSelector",
		"spec.template.spec.nodeName",
		"spec.template.spec.tolerations",
		"spec.template.spec.topologySpreadConstraints",
	},
	DataKeyService: {
		"metadata.labels",
		"metadata.annotations",
		"spec.type",
		"spec.loadBalancerSourceRanges",
		"spec.loadBalancerClass",
		"spec.externalTrafficPolicy",
		"spec.internalTrafficPolicy",
	},
	DataKeyHorizontalPodAutoscaler: {
		"metadata.labels",
		"metadata.annotations",
		"spec.behavior.scaleUp.stabilizationWindowSeconds",
		"spec.behavior.scaleUp.selectPolicy",
		"spec.behavior.scaleUp.policies",
		"spec.behavior.scaleDown.stabilizationWindowSeconds",
		"spec.behavior.scaleDown.selectPolicy",
		"spec.behavior.scaleDown.policies",
		"spec.metrics",
		"spec.minReplicas",
		"spec.maxReplicas",
	},
	DataKeyPodDisruptionBudget: {
		"metadata.labels",
		"metadata.annotations",
		"spec.minAvailable",
		"spec.unhealthyPodEvictionPolicy",
	},
}

// KeyedListPaths are the lists on the way to allowed fields whose elements are matched by
// name; ContainerPath's only legal element is the proxy container.
var KeyedListPaths = map[DataKey][]string{
	DataKeyDeployment: {ContainersPath},
}

// ContainersPath is the pod template's container list, entered element by element.
const ContainersPath = "spec.template.spec.containers"

// ReservedLabels are label keys the operator sets on generated objects and their pods:
// a fragment that sets or removes one would break pod selection or ownership.
var ReservedLabels = []string{
	GatewayNameLabel,
	GatewayClassNameLabel,
	ManagedLabel,
	RevisionLabel,
}
