//go:build istio

package istio

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// proxyFacts flattens what a gateway Deployment tells its proxies into comparable entries:
// the image, each environment variable, port, volume and mount of the istio-proxy container,
// and the pod template's labels and annotations, keyed "env TRUST_DOMAIN", "label app", ...
func proxyFacts(d *appsv1.Deployment) (map[string]string, error) {
	facts := map[string]string{}
	tpl := d.Spec.Template
	for k, v := range tpl.Labels {
		facts["label "+k] = v
	}
	for k, v := range tpl.Annotations {
		facts["annotation "+k] = v
	}
	facts["serviceAccountName"] = tpl.Spec.ServiceAccountName
	var proxy *corev1.Container
	for i := range tpl.Spec.Containers {
		if tpl.Spec.Containers[i].Name == "istio-proxy" {
			proxy = &tpl.Spec.Containers[i]
		}
	}
	if proxy == nil {
		return nil, fmt.Errorf("Deployment %s/%s has no istio-proxy container", d.Namespace, d.Name)
	}
	facts["image"] = proxy.Image
	facts["args"] = strings.Join(proxy.Args, " ")
	for key, v := range map[string]any{
		"resources":                        proxy.Resources,
		"securityContext":                  proxy.SecurityContext,
		"readinessProbe":                   proxy.ReadinessProbe,
		"startupProbe":                     proxy.StartupProbe,
		"livenessProbe":                    proxy.LivenessProbe,
		"lifecycle":                        proxy.Lifecycle,
		"pod securityContext":              tpl.Spec.SecurityContext,
		"pod terminationGracePeriod":       tpl.Spec.TerminationGracePeriodSeconds,
		"pod automountServiceAccountToken": tpl.Spec.AutomountServiceAccountToken,
		"deployment replicas":              d.Spec.Replicas,
		"deployment strategy":              d.Spec.Strategy,
		"deployment selector":              d.Spec.Selector,
	} {
		data, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		facts[key] = string(data)
	}
	for k, v := range d.Labels {
		facts["deployment label "+k] = v
	}
	for k, v := range d.Annotations {
		facts["deployment annotation "+k] = v
	}
	for _, e := range proxy.Env {
		value := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			value = "fieldRef " + e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil:
			value = "resourceFieldRef " + e.ValueFrom.ResourceFieldRef.Resource
		case e.Name == "PROXY_CONFIG":
			canonical, err := canonicalJSON(e.Value)
			if err != nil {
				return nil, fmt.Errorf("PROXY_CONFIG of %s/%s: %w", d.Namespace, d.Name, err)
			}
			value = canonical
		}
		facts["env "+e.Name] = value
	}
	for _, p := range proxy.Ports {
		facts["port "+p.Name] = fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
	}
	for _, m := range proxy.VolumeMounts {
		facts["mount "+m.Name] = m.MountPath
	}
	for _, v := range tpl.Spec.Volumes {
		facts["volume "+v.Name] = volumeSource(v)
	}
	return facts, nil
}

func volumeSource(v corev1.Volume) string {
	switch {
	case v.EmptyDir != nil:
		return "emptyDir " + string(v.EmptyDir.Medium)
	case v.ConfigMap != nil:
		return "configMap " + v.ConfigMap.Name
	case v.DownwardAPI != nil:
		var paths []string
		for _, f := range v.DownwardAPI.Items {
			paths = append(paths, f.Path)
		}
		sort.Strings(paths)
		return "downwardAPI " + strings.Join(paths, ",")
	case v.Projected != nil:
		return "projected"
	case v.CSI != nil:
		return "csi " + v.CSI.Driver
	}
	return "other"
}

func canonicalJSON(s string) (string, error) {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return "", err
	}
	out, err := json.Marshal(v)
	return string(out), err
}

// factDifference is one entry that differs between istiod's rendering and the operator's.
type factDifference struct {
	key, istiod, operator string
}

func (d factDifference) String() string {
	return fmt.Sprintf("%s: istiod %q, operator %q", d.key, d.istiod, d.operator)
}

// diffFacts lists the entries that differ (absent on one side is "").
func diffFacts(istiod, operator map[string]string) []factDifference {
	keys := slices.Sorted(maps.Keys(istiod))
	for k := range operator {
		if _, ok := istiod[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []factDifference
	for _, k := range keys {
		if istiod[k] != operator[k] {
			out = append(out, factDifference{key: k, istiod: istiod[k], operator: operator[k]})
		}
	}
	return out
}
