package controllers

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/customize"
	"github.com/kubegate/istio-gateway-operator/pkg/sources"
)

// Webhook paths, as config/webhook/manifests.yaml registers them.
const (
	ConfigMapWebhookPath = "/validate-v1-configmap"
	GatewayWebhookPath   = "/validate-gateway-networking-k8s-io-v1-gateway"
)

// SetupWebhooks registers the validating webhooks on the manager's webhook server, which
// every replica runs, leader or not.
func SetupWebhooks(mgr ctrl.Manager, opts Options) error {
	decoder := admission.NewDecoder(mgr.GetScheme())
	srv := mgr.GetWebhookServer()
	srv.Register(ConfigMapWebhookPath, &webhook.Admission{Handler: &ConfigMapValidator{
		Cache: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Options: opts, decoder: decoder,
	}})
	srv.Register(GatewayWebhookPath, &webhook.Admission{Handler: &GatewayValidator{
		Cache: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Options: opts, decoder: decoder,
	}})
	return nil
}

// ConfigMapValidator rejects customization ConfigMaps that the reconciler would have to
// trim, so that users learn at `kubectl apply` time which fields are not allowed.
type ConfigMapValidator struct {
	// Cache answers "is this ConfigMap a customization?" without API calls.
	Cache client.Reader
	// APIReader reads a class defaults ConfigMap's content, which the cache does not hold,
	// to tell a Gateway-level ConfigMap what the class level adds.
	APIReader client.Reader
	Options   Options
	decoder   admission.Decoder
}

// configMapRole is why a ConfigMap is a customization; the zero value means it is none.
type configMapRole struct {
	// description completes "is not a valid ..." in a rejection.
	description string
	// defaultsOf names the class the ConfigMap is labelled as the defaults of.
	defaultsOf string
	// gatewayClasses are the classes of the Gateways whose parametersRef names it.
	gatewayClasses []*gatewayv1.GatewayClass
}

// Handle admits unrelated ConfigMaps at once and judges customization ConfigMaps whole.
func (v *ConfigMapValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	cm := &corev1.ConfigMap{}
	if judged, err := decodeWrite(v.decoder, req, cm); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	} else if !judged {
		return admission.Allowed("")
	}
	role, err := v.roleOf(ctx, cm)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if role.description == "" {
		return admission.Allowed("not a customization ConfigMap")
	}
	verdict := customize.Validate(cm.Data)
	var warnings []string
	if class := role.defaultsOf; class != "" {
		if cm.Namespace != v.Options.SystemNamespace {
			warnings = append(warnings, fmt.Sprintf("%s=%s has no effect outside namespace %s", v1alpha1.DefaultsForClassLabel, class, v.Options.SystemNamespace))
		} else if inForce, err := v.olderClassDefaults(ctx, cm, class); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		} else if inForce != "" {
			verdict.Violations = append(verdict.Violations, fmt.Sprintf("only one ConfigMap may be labelled %s=%s; %s is already in force",
				v1alpha1.DefaultsForClassLabel, class, inForce))
		}
	}
	warnings = append(warnings, verdict.Warnings...)
	for _, gc := range role.gatewayClasses {
		warning, err := replicasUnderClassHPA(ctx, v.Cache, v.APIReader, gc, v.Options.SystemNamespace, verdict)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		if warning != "" {
			warnings = append(warnings, warning)
			break
		}
	}
	if !verdict.Allowed() {
		return admission.Denied(rejection("ConfigMap", cm.Namespace, cm.Name, role.description, verdict.Violations)).WithWarnings(warnings...)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// replicasUnderClassHPA warns a Gateway level that sets spec.replicas when its class level
// asks for an HPA: the HPA then owns the count, and the value would not be applied.
func replicasUnderClassHPA(ctx context.Context, cache, apiReader client.Reader, gc *gatewayv1.GatewayClass, systemNamespace string, verdict customize.Verdict) (string, error) {
	if !verdict.SetsReplicas || verdict.AsksForHPA {
		return "", nil
	}
	defaults, err := resolveClassDefaults(ctx, cache, gc, systemNamespace)
	if err != nil || defaults.Ref == nil {
		return "", err
	}
	cm := &corev1.ConfigMap{}
	if err := apiReader.Get(ctx, *defaults.Ref, cm); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	if _, ok := cm.Data[string(v1alpha1.DataKeyHorizontalPodAutoscaler)]; !ok {
		return "", nil
	}
	return fmt.Sprintf("%s; the HorizontalPodAutoscaler comes from ConfigMap %s, the class level of GatewayClass %s",
		customize.ReplicasUnderHPA("").String(), defaults.Ref, gc.Name), nil
}

// decodeWrite decodes the object of a CREATE or UPDATE request into obj, with the
// request's namespace; judged is false for any other operation, which the webhooks admit.
func decodeWrite(decoder admission.Decoder, req admission.Request, obj client.Object) (judged bool, err error) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return false, nil
	}
	if err := decoder.Decode(req, obj); err != nil {
		return false, err
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace(req.Namespace)
	}
	return true, nil
}

func rejection(kind, namespace, name, role string, violations []string) string {
	return fmt.Sprintf("%s %s/%s is not a valid %s: %s", kind, namespace, name, role, strings.Join(violations, "; "))
}

// roleOf says why a ConfigMap is a customization. A ConfigMap labelled for a class is
// judged unless that class exists and belongs to another controller: a class created later
// must not meet defaults no one checked.
func (v *ConfigMapValidator) roleOf(ctx context.Context, cm *corev1.ConfigMap) (configMapRole, error) {
	if class := cm.Labels[v1alpha1.DefaultsForClassLabel]; class != "" {
		gc := &gatewayv1.GatewayClass{}
		err := v.Cache.Get(ctx, types.NamespacedName{Name: class}, gc)
		switch {
		case apierrors.IsNotFound(err) || (err == nil && isServedClass(gc)):
			return configMapRole{description: "class defaults ConfigMap for GatewayClass " + class, defaultsOf: class}, nil
		case err != nil:
			return configMapRole{}, fmt.Errorf("reading GatewayClass %s: %w", class, err)
		}
	}
	classes, err := classesUsingConfigMap(ctx, v.Cache, cm, v.Options.SystemNamespace)
	if err != nil {
		return configMapRole{}, err
	}
	if len(classes) > 0 {
		return configMapRole{description: "parameters ConfigMap of GatewayClass " + strings.Join(classes, ", ")}, nil
	}
	list := &gatewayv1.GatewayList{}
	if err := v.Cache.List(ctx, list, client.MatchingFields{GatewayParametersIndex: cm.Namespace + "/" + cm.Name}); err != nil {
		return configMapRole{}, fmt.Errorf("listing Gateways referencing ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	var role configMapRole
	var names []string
	for _, gw := range list.Items {
		gc, err := servedClass(ctx, v.Cache, string(gw.Spec.GatewayClassName))
		if err != nil {
			return configMapRole{}, err
		}
		if gc != nil {
			names = append(names, gw.Name)
			role.gatewayClasses = append(role.gatewayClasses, gc)
		}
	}
	if len(names) == 0 {
		return configMapRole{}, nil
	}
	sort.Strings(names)
	role.description = "parameters ConfigMap of Gateway " + strings.Join(names, ", ")
	return role, nil
}

// olderClassDefaults names the labelled ConfigMap that is in force instead of cm, or ""
// when cm itself would be.
func (v *ConfigMapValidator) olderClassDefaults(ctx context.Context, cm *corev1.ConfigMap, class string) (string, error) {
	labelled, err := labelledClassDefaults(ctx, v.Cache, class, cm.Namespace)
	if err != nil {
		return "", err
	}
	candidates := []metav1.Object{cm}
	for _, other := range labelled {
		if other.GetName() != cm.Name {
			candidates = append(candidates, other)
		}
	}
	if inForce, _ := sources.InForce(candidates); inForce != metav1.Object(cm) {
		return inForce.GetNamespace() + "/" + inForce.GetName(), nil
	}
	return "", nil
}

// GatewayValidator rejects Gateways of a served class whose parametersRef names a
// ConfigMap the ConfigMap webhook would reject. A reference of another kind is admitted
// with a warning: Gateway API says it must be reported on status (Accepted=False,
// InvalidParameters), and the reconciler does.
type GatewayValidator struct {
	Cache client.Reader
	// APIReader reads the referenced ConfigMap's content, which the cache does not hold.
	APIReader client.Reader
	Options   Options
	decoder   admission.Decoder
}

// Handle judges the Gateway's parametersRef; a ConfigMap that does not exist yet is allowed
// with a warning, and the Gateway's status reports it until it appears.
func (v *GatewayValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	gw := &gatewayv1.Gateway{}
	if judged, err := decodeWrite(v.decoder, req, gw); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	} else if !judged {
		return admission.Allowed("")
	}
	params := sources.GatewayParameters(gw)
	if params.ConfigMap == nil && params.Problem == "" {
		return admission.Allowed("")
	}
	gc, err := servedClass(ctx, v.Cache, string(gw.Spec.GatewayClassName))
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	} else if gc == nil {
		return admission.Allowed("")
	}
	if params.Problem != "" {
		return admission.Allowed("").WithWarnings(fmt.Sprintf("spec.infrastructure.%s: the Gateway reports Accepted=False (InvalidParameters); "+
			"reference a ConfigMap in the Gateway's namespace", params.Problem))
	}
	ref := *params.ConfigMap
	cm := &corev1.ConfigMap{}
	if err := v.APIReader.Get(ctx, ref, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return admission.Allowed("").WithWarnings(fmt.Sprintf("ConfigMap %s does not exist yet: the Gateway reports Accepted=False (InvalidParameters) until it does", ref))
		}
		log.FromContext(ctx).Error(err, "Reading a Gateway's parameters ConfigMap", "configMap", klogRef(ref.Namespace, ref.Name))
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading ConfigMap %s: %w", ref, err))
	}
	verdict := customize.Validate(cm.Data)
	warnings := verdict.Warnings
	if warning, err := replicasUnderClassHPA(ctx, v.Cache, v.APIReader, gc, v.Options.SystemNamespace, verdict); err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	} else if warning != "" {
		warnings = append(warnings, warning)
	}
	if !verdict.Allowed() {
		return admission.Denied(rejection("ConfigMap", cm.Namespace, cm.Name, "parameters ConfigMap of Gateway "+gw.Name, verdict.Violations)).WithWarnings(warnings...)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}
