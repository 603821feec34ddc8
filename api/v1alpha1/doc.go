// Package v1alpha1 is the contract users write against: the labels, annotations and
// ConfigMap data keys the operator reads, the customization fragments those keys hold,
// and the field allowlist that decides which parts of a fragment may reach the cluster.
//
// The operator defines no CustomResourceDefinitions: customization travels in ConfigMaps
// referenced from Gateway API objects, so this package holds no registered kinds.
package v1alpha1
