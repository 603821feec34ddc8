// Package meshconfig reads what a control-plane revision's own configuration says its
// gateway proxies run with, the way istiod's gateway template does: the mesh config
// (ConfigMap istio[-<revision>], key mesh) and the injector values (ConfigMap
// istio-sidecar-injector[-<revision>], key values). It is pure: callers pass the
// ConfigMaps' data in.
package meshconfig

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"sigs.k8s.io/yaml"
)

// Keys of the revision's ConfigMaps.
const (
	// MeshKey holds the mesh config (YAML) in the mesh ConfigMap.
	MeshKey = "mesh"
	// ValuesKey holds the injector values (JSON) in the injector ConfigMap.
	ValuesKey = "values"
)

// Istio's built-in defaults, which apply where the revision's configuration is silent.
const (
	// DefaultTrustDomain is the mesh config's default trust domain.
	DefaultTrustDomain = "cluster.local"
	// DefaultClusterID is istiod's cluster ID unless configured.
	DefaultClusterID = "Kubernetes"
	// DefaultProxyImageName is the proxy image's name under the hub.
	DefaultProxyImageName = "proxyv2"
	// DefaultPilotCertProvider is who signs the proxies' certificates.
	DefaultPilotCertProvider = "istiod"
	// defaultDiscoveryAddress is ProxyConfig's built-in discoveryAddress, left out of
	// PROXY_CONFIG as istiod leaves out every default.
	defaultDiscoveryAddress = "istiod.istio-system.svc:15012"
	xdsPort                 = 15012
)

// MeshConfigMapName names a revision's mesh ConfigMap: istio for the default revision.
func MeshConfigMapName(revision string) string { return withRevision("istio", revision) }

// InjectorConfigMapName names a revision's injector ConfigMap.
func InjectorConfigMapName(revision string) string {
	return withRevision("istio-sidecar-injector", revision)
}

func withRevision(name, revision string) string {
	if revision == "" || revision == "default" {
		return name
	}
	return name + "-" + revision
}

// DiscoveryAddress is where a revision's istiod serves xDS and certificates.
func DiscoveryAddress(revision, namespace string) string {
	return fmt.Sprintf("%s.%s.svc:%d", withRevision("istiod", revision), namespace, xdsPort)
}

// Proxy is what the gateway proxies of a revision run with.
type Proxy struct {
	// Image is the proxy image: global.hub/global.proxy.image:global.tag[-variant], or
	// global.proxy.image when it is a full reference; "" when the values name none.
	Image string
	// TrustDomain is the mesh's trust domain (TRUST_DOMAIN): the proxies' certificates
	// must carry it.
	TrustDomain string
	// MeshID (ISTIO_META_MESH_ID) is global.meshID, else the trust domain.
	MeshID string
	// ClusterID (ISTIO_META_CLUSTER_ID) is global.multiCluster.clusterName, else istiod's default.
	ClusterID string
	// Network (ISTIO_META_NETWORK, unless the Gateway names its own network) is
	// global.network; "" outside a multi-network mesh.
	Network string
	// CAAddress (CA_ADDR) is global.caAddress, else the revision's istiod.
	CAAddress string
	// PilotCertProvider (PILOT_CERT_PROVIDER) is global.pilotCertProvider.
	PilotCertProvider string
	// ProxyMetadata are the mesh's defaultConfig.proxyMetadata, one env var each.
	ProxyMetadata map[string]string
	// ProxyConfig is the mesh's defaultConfig as JSON (PROXY_CONFIG), with the revision's
	// discoveryAddress where it names none.
	ProxyConfig string
}

// meshConfig is the part of Istio's MeshConfig the proxies depend on.
type meshConfig struct {
	TrustDomain   string         `json:"trustDomain"`
	DefaultConfig map[string]any `json:"defaultConfig"`
}

// values is the part of the injector values the gateway template reads.
type values struct {
	Revision string `json:"revision"`
	Global   struct {
		Hub     string `json:"hub"`
		Tag     any    `json:"tag"`
		Variant string `json:"variant"`
		Proxy   struct {
			Image string `json:"image"`
		} `json:"proxy"`
		MeshID       string `json:"meshID"`
		Network      string `json:"network"`
		TrustDomain  string `json:"trustDomain"`
		MultiCluster struct {
			ClusterName string `json:"clusterName"`
		} `json:"multiCluster"`
		CAAddress         string `json:"caAddress"`
		PilotCertProvider string `json:"pilotCertProvider"`
		IstioNamespace    string `json:"istioNamespace"`
	} `json:"global"`
}

// Parse reads a revision's mesh config and injector values; either may be empty (then
// Istio's defaults apply, as in istiod). A malformed one is an error naming its key.
func Parse(mesh, injectorValues, revision, namespace string) (Proxy, error) {
	var m meshConfig
	if err := yaml.Unmarshal([]byte(mesh), &m); err != nil {
		return Proxy{}, fmt.Errorf("%s: not valid mesh config YAML: %w", MeshKey, err)
	}
	var v values
	if strings.TrimSpace(injectorValues) != "" {
		if err := json.Unmarshal([]byte(injectorValues), &v); err != nil {
			return Proxy{}, fmt.Errorf("%s: not valid injector values JSON: %w", ValuesKey, err)
		}
	}
	p := Proxy{
		TrustDomain:       firstOf(m.TrustDomain, v.Global.TrustDomain, DefaultTrustDomain),
		ClusterID:         firstOf(v.Global.MultiCluster.ClusterName, DefaultClusterID),
		Network:           v.Global.Network,
		PilotCertProvider: firstOf(v.Global.PilotCertProvider, DefaultPilotCertProvider),
		ProxyMetadata:     map[string]string{},
	}
	p.MeshID = firstOf(v.Global.MeshID, p.TrustDomain)
	p.CAAddress = firstOf(v.Global.CAAddress, DiscoveryAddress(firstOf(v.Revision, revision), firstOf(v.Global.IstioNamespace, namespace)))
	image, err := proxyImage(v, m)
	if err != nil {
		return Proxy{}, err
	}
	p.Image = image
	if raw, ok := m.DefaultConfig["proxyMetadata"].(map[string]any); ok {
		for k, val := range raw {
			p.ProxyMetadata[k] = fmt.Sprint(val)
		}
	}
	proxyConfig := maps.Clone(m.DefaultConfig)
	if proxyConfig == nil {
		proxyConfig = map[string]any{}
	}
	if _, set := proxyConfig["discoveryAddress"]; !set {
		proxyConfig["discoveryAddress"] = DiscoveryAddress(revision, namespace)
	}
	if proxyConfig["discoveryAddress"] == defaultDiscoveryAddress {
		delete(proxyConfig, "discoveryAddress")
	}
	js, err := json.Marshal(proxyConfig)
	if err != nil {
		return Proxy{}, fmt.Errorf("%s: defaultConfig cannot be written as JSON: %w", MeshKey, err)
	}
	p.ProxyConfig = string(js)
	return p, nil
}

// proxyImage composes the image as Istio's injector does.
func proxyImage(v values, m meshConfig) (string, error) {
	name := firstOf(v.Global.Proxy.Image, DefaultProxyImageName)
	if strings.Contains(name, "/") {
		return name, nil
	}
	tag := ""
	switch t := v.Global.Tag.(type) {
	case nil:
	case string:
		tag = t
	case float64:
		tag = fmt.Sprint(t)
	default:
		return "", fmt.Errorf("%s: global.tag %v is neither a string nor a number", ValuesKey, t)
	}
	if v.Global.Hub == "" || tag == "" {
		return "", nil
	}
	variant := v.Global.Variant
	if image, ok := m.DefaultConfig["image"].(map[string]any); ok {
		if t, ok := image["imageType"].(string); ok && t != "" {
			variant = t
		}
	}
	for _, suffix := range []string{"-distroless", "-debug"} {
		tag = strings.TrimSuffix(tag, suffix)
	}
	if variant != "" && variant != "default" {
		tag += "-" + variant
	}
	return v.Global.Hub + "/" + name + ":" + tag, nil
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
