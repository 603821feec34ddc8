package status

import (
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

// certificateRef is one listener certificateRef with its defaults applied.
type certificateRef struct {
	group gatewayv1.Group
	kind  gatewayv1.Kind
	key   types.NamespacedName
}

func resolveCertificateRef(gwNamespace string, ref gatewayv1.SecretObjectReference) certificateRef {
	out := certificateRef{group: "", kind: KindSecret, key: types.NamespacedName{Namespace: gwNamespace, Name: string(ref.Name)}}
	if ref.Group != nil {
		out.group = *ref.Group
	}
	if ref.Kind != nil {
		out.kind = *ref.Kind
	}
	if ref.Namespace != nil && *ref.Namespace != "" {
		out.key.Namespace = string(*ref.Namespace)
	}
	return out
}

// PermittedCertificateSecrets lists the Secrets a Gateway's listeners reference and may
// read: core Secrets in the Gateway's namespace, or in another one whose ReferenceGrant
// allows it. The reconciler reads exactly these, and nothing it is not allowed to use.
func PermittedCertificateSecrets(gw *gatewayv1.Gateway, grants []gatewayv1.ReferenceGrant) []types.NamespacedName {
	var out []types.NamespacedName
	seen := map[types.NamespacedName]bool{}
	for _, l := range gw.Spec.Listeners {
		if l.TLS == nil {
			continue
		}
		for _, ref := range l.TLS.CertificateRefs {
			r := resolveCertificateRef(gw.Namespace, ref)
			if r.group != "" || r.kind != KindSecret || seen[r.key] {
				continue
			}
			if !ReferenceGranted(grants, gatewayv1.GroupName, KindGateway, gw.Namespace, "", KindSecret, r.key.Namespace, r.key.Name) {
				continue
			}
			seen[r.key] = true
			out = append(out, r.key)
		}
	}
	return out
}

// GrantNamespaces are the namespaces whose ReferenceGrants decide the Gateway's
// cross-namespace certificate references.
func GrantNamespaces(gw *gatewayv1.Gateway) []string {
	var out []string
	seen := map[string]bool{gw.Namespace: true}
	for _, l := range gw.Spec.Listeners {
		if l.TLS == nil {
			continue
		}
		for _, ref := range l.TLS.CertificateRefs {
			if ns := resolveCertificateRef(gw.Namespace, ref).key.Namespace; !seen[ns] {
				seen[ns] = true
				out = append(out, ns)
			}
		}
	}
	return out
}
