package controllers

import (
	"context"
	"fmt"
	"net/http"
	"slices"
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
		class, err := readClassLevel(ctx, v.Cache, v.APIReader, gc, v.Options.SystemNamespace)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		judged := class.judge(ctx, v.Cache, cm.Namespace, cm.Data, verdict)
		verdict.Violations = appendNew(verdict.Violations, judged.Violations...)
		warnings = appendNew(warnings, judged.Warnings...)
	}
	if !verdict.Allowed() {
		return admission.Denied(rejection("ConfigMap", cm.Namespace, cm.Name, role.description, verdict.Violations)).WithWarnings(warnings...)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// classLevel is what the webhooks know of one served class's class level: its ConfigMap,
// read once per admission request, nil when the class has none.
type classLevel struct {
	gc  *gatewayv1.GatewayClass
	cm  *corev1.ConfigMap
	ref *types.NamespacedName
}

// readClassLevel reads the class-level ConfigMap of gc, which the cache holds only the
// metadata of.
func readClassLevel(ctx context.Context, cache, apiReader client.Reader, gc *gatewayv1.GatewayClass, systemNamespace string) (classLevel, error) {
	out := classLevel{gc: gc}
	defaults, err := resolveClassDefaults(ctx, cache, gc, systemNamespace)
	if err != nil || defaults.Ref == nil {
		return out, err
	}
	cm := &corev1.ConfigMap{}
	if err := apiReader.Get(ctx, *defaults.Ref, cm); err != nil {
		return out, client.IgnoreNotFound(err)
	}
	out.cm, out.ref = cm, defaults.Ref
	return out, nil
}

// rules are the class policy's rules for a Gateway in namespace; a class level without a
// usable policy gives rules that let everything through.
func (c classLevel) rules(ctx context.Context, cache client.Reader, namespace string) customize.Rules {
	text, set := "", false
	if c.cm != nil {
		text, set = c.cm.Data[v1alpha1.DataKeyPolicy]
	}
	policy, problems := customize.ParsePolicy(text)
	if !set || len(problems) > 0 {
		return customize.RulesFor(nil, c.gc.Name, nil)
	}
	labels, _ := namespaceLabels(ctx, cache)(namespace)
	return customize.RulesFor(policy, c.gc.Name, labels)
}

// judge judges a Gateway-level ConfigMap's data (in namespace) against the class level: its
// policy's rules (what the reconciler would drop or lower is a violation naming the rule)
// and, as a warning, a spec.replicas its HPA would override.
func (c classLevel) judge(ctx context.Context, cache client.Reader, namespace string, data map[string]string, verdict customize.Verdict) customize.Verdict {
	var out customize.Verdict
	if c.cm != nil && verdict.SetsReplicas && !verdict.AsksForHPA {
		if _, ok := c.cm.Data[string(v1alpha1.DataKeyHorizontalPodAutoscaler)]; ok {
			out.Warnings = append(out.Warnings, fmt.Sprintf("%s; the HorizontalPodAutoscaler comes from ConfigMap %s, the class level of GatewayClass %s",
				customize.ReplicasUnderHPA("").String(), c.ref, c.gc.Name))
		}
	}
	set, err := customize.Parse("", data)
	if err != nil {
		return out // Validate has named every malformed fragment.
	}
	_, findings := c.rules(ctx, cache, namespace).Filter(set)
	for _, f := range findings {
		out.Violations = append(out.Violations, f.String())
	}
	return out
}

// appendNew appends the messages not already in list: a ConfigMap several Gateways of one
// class use is judged once per class, and each message is said once.
func appendNew(list []string, messages ...string) []string {
	for _, m := range messages {
		if !slices.Contains(list, m) {
			list = append(list, m)
		}
	}
	return list
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
		if gc == nil {
			continue
		}
		names = append(names, gw.Name)
		if !slices.ContainsFunc(role.gatewayClasses, func(c *gatewayv1.GatewayClass) bool { return c.Name == gc.Name }) {
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
	if gw.Spec.Infrastructure == nil {
		return admission.Allowed("")
	}
	gc, err := servedClass(ctx, v.Cache, string(gw.Spec.GatewayClassName))
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	} else if gc == nil {
		return admission.Allowed("")
	}
	params := sources.GatewayParameters(gw)
	infra := gw.Spec.Infrastructure
	class := classLevel{gc: gc}
	if len(infra.Labels) > 0 || len(infra.Annotations) > 0 || params.ConfigMap != nil {
		// Read once: the policy judges the metadata here and the ConfigMap below.
		if class, err = readClassLevel(ctx, v.Cache, v.APIReader, gc, v.Options.SystemNamespace); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
	}
	if refused := v.enforcedInfrastructure(ctx, gw, class); len(refused) > 0 {
		return admission.Denied(rejection("Gateway", gw.Namespace, gw.Name, "Gateway of GatewayClass "+gc.Name, refused))
	}
	if params.ConfigMap == nil && params.Problem == "" {
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
	judged := class.judge(ctx, v.Cache, gw.Namespace, cm.Data, verdict)
	verdict.Violations = appendNew(verdict.Violations, judged.Violations...)
	warnings := appendNew(verdict.Warnings, judged.Warnings...)
	if !verdict.Allowed() {
		return admission.Denied(rejection("ConfigMap", cm.Namespace, cm.Name, "parameters ConfigMap of Gateway "+gw.Name, verdict.Violations)).WithWarnings(warnings...)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// enforcedInfrastructure names the spec.infrastructure labels and annotations the class
// policy reserves for the class level, which the reconciler would leave off the objects.
func (v *GatewayValidator) enforcedInfrastructure(ctx context.Context, gw *gatewayv1.Gateway, class classLevel) []string {
	_, findings := class.rules(ctx, v.Cache, gw.Namespace).Infrastructure(gw.Spec.Infrastructure)
	out := make([]string, 0, len(findings))
	for _, f := range findings {
		out = append(out, f.String())
	}
	return out
}
