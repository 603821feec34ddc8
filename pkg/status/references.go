package status

import (
	"slices"

	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// KindSecret and KindGateway are the kinds a listener's certificate reference joins.
const (
	KindSecret  gatewayv1.Kind = "Secret"
	KindGateway gatewayv1.Kind = "Gateway"
)

// CertificateStates says, for each Secret a listener may use, what it is worth: "" for a
// certificate and key that parse, otherwise why not. A Secret that is not in the map does
// not exist.
type CertificateStates map[types.NamespacedName]string

// ReferenceGranted applies Gateway API's ReferenceGrant rule: a reference from an object of
// fromGroup/fromKind in fromNamespace to toName of toGroup/toKind in toNamespace is allowed
// when both are in one namespace, or when a ReferenceGrant in toNamespace lists the "from"
// side and a "to" entry for that kind with that name or no name.
func ReferenceGranted(grants []gatewayv1.ReferenceGrant, fromGroup gatewayv1.Group, fromKind gatewayv1.Kind, fromNamespace string,
	toGroup gatewayv1.Group, toKind gatewayv1.Kind, toNamespace, toName string) bool {
	if fromNamespace == toNamespace {
		return true
	}
	for _, g := range grants {
		if g.Namespace != toNamespace {
			continue
		}
		fromOK := false
		for _, f := range g.Spec.From {
			if f.Group == fromGroup && f.Kind == fromKind && string(f.Namespace) == fromNamespace {
				fromOK = true
				break
			}
		}
		if !fromOK {
			continue
		}
		for _, to := range g.Spec.To {
			if to.Group == toGroup && to.Kind == toKind && (to.Name == nil || *to.Name == "" || string(*to.Name) == toName) {
				return true
			}
		}
	}
	return false
}

// objectRef is a reference to a core object with Gateway API's defaults applied: the
// referrer's namespace, and the kind the field names by default.
type objectRef struct {
	group gatewayv1.Group
	kind  gatewayv1.Kind
	key   types.NamespacedName
}

func newObjectRef(group *gatewayv1.Group, kind *gatewayv1.Kind, defaultKind gatewayv1.Kind, namespace *gatewayv1.Namespace, name gatewayv1.ObjectName, referrerNamespace string) objectRef {
	out := objectRef{kind: defaultKind, key: types.NamespacedName{Namespace: referrerNamespace, Name: string(name)}}
	if group != nil {
		out.group = *group
	}
	if kind != nil {
		out.kind = *kind
	}
	if namespace != nil && *namespace != "" {
		out.key.Namespace = string(*namespace)
	}
	return out
}

// permittedRefs are the distinct core objects of kind toKind that a fromKind object in
// fromNamespace references and may use: in its own namespace, or granted by a
// ReferenceGrant. The reconcilers read exactly these, and nothing they may not use.
func permittedRefs(refs []objectRef, grants []gatewayv1.ReferenceGrant, fromKind gatewayv1.Kind, fromNamespace string, toKind gatewayv1.Kind) []types.NamespacedName {
	var out []types.NamespacedName
	seen := map[types.NamespacedName]bool{}
	for _, r := range refs {
		if r.group != "" || r.kind != toKind || seen[r.key] ||
			!ReferenceGranted(grants, gatewayv1.GroupName, fromKind, fromNamespace, "", toKind, r.key.Namespace, r.key.Name) {
			continue
		}
		seen[r.key] = true
		out = append(out, r.key)
	}
	return out
}

// refNamespaces are the namespaces other than the referrer's that refs point into, whose
// ReferenceGrants decide them.
func refNamespaces(refs []objectRef, referrerNamespace string) []string {
	var out []string
	seen := map[string]bool{referrerNamespace: true}
	for _, r := range refs {
		if !seen[r.key.Namespace] {
			seen[r.key.Namespace] = true
			out = append(out, r.key.Namespace)
		}
	}
	return out
}

// GrantSources are the namespaces a ReferenceGrant lets objects of fromKind (a Gateway API
// kind) reference its namespace from.
func GrantSources(grant *gatewayv1.ReferenceGrant, fromKind gatewayv1.Kind) []string {
	var out []string
	for _, from := range grant.Spec.From {
		if from.Group == gatewayv1.GroupName && from.Kind == fromKind {
			out = append(out, string(from.Namespace))
		}
	}
	return out
}

// certificateRefs are a Gateway's listeners' tls.certificateRefs.
func certificateRefs(gw *gatewayv1.Gateway) []objectRef {
	var out []objectRef
	for _, l := range gw.Spec.Listeners {
		if l.TLS == nil {
			continue
		}
		for _, ref := range l.TLS.CertificateRefs {
			out = append(out, certificateRef(gw.Namespace, ref))
		}
	}
	return out
}

func certificateRef(gwNamespace string, ref gatewayv1.SecretObjectReference) objectRef {
	return newObjectRef(ref.Group, ref.Kind, KindSecret, ref.Namespace, ref.Name, gwNamespace)
}

// PermittedCertificateSecrets lists the Secrets a Gateway's listeners reference and may
// read: core Secrets in the Gateway's namespace, or in another one whose ReferenceGrant
// allows it.
func PermittedCertificateSecrets(gw *gatewayv1.Gateway, grants []gatewayv1.ReferenceGrant) []types.NamespacedName {
	return permittedRefs(certificateRefs(gw), grants, KindGateway, gw.Namespace, KindSecret)
}

// CertificateSecrets lists every core Secret a Gateway's listeners reference, permitted or
// not: a change of any of them may change the listeners' status.
func CertificateSecrets(gw *gatewayv1.Gateway) []types.NamespacedName {
	var out []types.NamespacedName
	for _, r := range certificateRefs(gw) {
		if r.group == "" && r.kind == KindSecret && !slices.Contains(out, r.key) {
			out = append(out, r.key)
		}
	}
	return out
}

// GrantNamespaces are the namespaces whose ReferenceGrants decide the Gateway's
// cross-namespace certificate references.
func GrantNamespaces(gw *gatewayv1.Gateway) []string {
	return refNamespaces(certificateRefs(gw), gw.Namespace)
}
