package controllers

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
)

// Defaults of the self-managed webhook certificate: the names config/default and the Helm
// chart give the objects, and cert-controller's own validity periods.
const (
	DefaultWebhookSecret        = "istio-gateway-operator-webhook-server-cert"
	DefaultWebhookConfiguration = "istio-gateway-operator-validating-webhook-configuration"
	DefaultWebhookService       = "istio-gateway-operator-webhook-service"
	DefaultWebhookCertValidity  = 365 * 24 * time.Hour
	DefaultWebhookCertRenewal   = 90 * 24 * time.Hour
	DefaultWebhookCertCheck     = 12 * time.Hour
)

// WebhookCertOptions say which Secret keeps the webhook's CA and serving certificate, which
// webhook configuration trusts it, and how long a certificate lives.
type WebhookCertOptions struct {
	// Namespace holds the Secret: the operator's own.
	Namespace string
	// SecretName is the one Secret the operator writes.
	SecretName string
	// WebhookConfiguration is the ValidatingWebhookConfiguration whose caBundle is kept.
	WebhookConfiguration string
	// DNSNames are the names the API server dials (the webhook Service's); the first is the
	// certificate's common name.
	DNSNames []string
	// CertDir receives tls.crt and tls.key as a copy of what is served, for debugging and
	// because cert-controller waits for the files before it reports ready.
	CertDir string
	// Validity is a serving certificate's lifetime, RenewBefore how long before its end a
	// new one is issued, CheckInterval how often that is checked.
	Validity, RenewBefore, CheckInterval time.Duration
	// ControllerName tells several rotators in one process apart (tests run two managers);
	// empty means cert-controller's default.
	ControllerName string
}

// ServiceDNSNames are the names the API server dials for a webhook Service.
func ServiceDNSNames(service, namespace string) []string {
	return []string{service + "." + namespace + ".svc", service + "." + namespace + ".svc.cluster.local"}
}

// Validate refuses options under which no certificate could be kept valid.
func (o WebhookCertOptions) Validate() error {
	var errs []error
	if o.Namespace == "" || o.SecretName == "" || o.WebhookConfiguration == "" {
		errs = append(errs, errors.New("the webhook certificate needs a namespace, a Secret name and a webhook configuration name"))
	}
	if len(o.DNSNames) == 0 || o.DNSNames[0] == "" {
		errs = append(errs, errors.New("the webhook certificate needs at least one DNS name"))
	}
	if o.Validity <= 0 || o.RenewBefore <= 0 || o.CheckInterval <= 0 {
		errs = append(errs, errors.New("the webhook certificate's validity, renewal and check interval must be positive"))
	}
	if o.RenewBefore >= o.Validity {
		errs = append(errs, fmt.Errorf("the webhook certificate is renewed %s before it ends but lives only %s: it would be renewed at every check", o.RenewBefore, o.Validity))
	}
	if o.CheckInterval >= o.RenewBefore {
		errs = append(errs, fmt.Errorf("the webhook certificate is checked every %s, not less than the %s before its end when it must be renewed: it could expire between checks", o.CheckInterval, o.RenewBefore))
	}
	return errors.Join(errs...)
}

// ServingCertificate is the pair every replica's webhook server presents: loaded from the
// Secret whenever it changes, so that a rotation reaches each replica within seconds, with
// no kubelet volume refresh and no file watch in between.
type ServingCertificate struct {
	current atomic.Pointer[tls.Certificate]
	// trusted says whether the webhook configuration's caBundle holds the CA of current.
	trusted atomic.Bool
	// injected is closed by cert-controller once this replica has put the CA in the webhook
	// configuration.
	injected chan struct{}
}

// NewServingCertificate is empty until SetupWebhookCerts loads the Secret.
func NewServingCertificate() *ServingCertificate {
	return &ServingCertificate{injected: make(chan struct{})}
}

// TLSOption makes a webhook server present the current pair.
func (s *ServingCertificate) TLSOption(cfg *tls.Config) {
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if pair := s.current.Load(); pair != nil {
			return pair, nil
		}
		return nil, errors.New("no webhook serving certificate yet: the operator has not read it from its Secret")
	}
}

// Ready is a readiness check: a replica takes webhook traffic only once it holds a pair and
// the webhook configuration trusts the CA that signed it.
func (s *ServingCertificate) Ready(*http.Request) error {
	if s.current.Load() == nil {
		return errors.New("no serving certificate loaded from the Secret yet")
	}
	if !s.trusted.Load() {
		return errors.New("the webhook configuration's caBundle does not hold the CA of the served certificate")
	}
	select {
	case <-s.injected:
		return nil
	default:
		return errors.New("the CA is not in the webhook configuration's caBundle yet")
	}
}

func (s *ServingCertificate) load(certPEM, keyPEM []byte) error {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	s.current.Store(&pair)
	return nil
}

// SetupWebhookCerts has the operator issue and rotate its own webhook certificate with
// open-policy-agent/cert-controller, as Gatekeeper does, on every replica (cert-controller
// writes with resourceVersion preconditions, so replicas racing at first start agree on one
// CA). Beside it, certificateKeeper recreates a deleted Secret and loads the pair into
// serving.
func SetupWebhookCerts(ctx context.Context, mgr ctrl.Manager, serving *ServingCertificate, o WebhookCertOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	secretKey := types.NamespacedName{Namespace: o.Namespace, Name: o.SecretName}
	// cert-controller gives up at start when the Secret is missing (it only updates it):
	// a first install without it, or one whose Secret was deleted while the operator was
	// down, gets an empty one now.
	if err := ensureSecret(ctx, mgr.GetAPIReader(), mgr.GetClient(), secretKey); err != nil {
		return err
	}
	scoped := scopedConfig(mgr.GetConfig(), o.Namespace, o.SecretName, o.WebhookConfiguration)
	if err := rotator.AddRotator(scopedManager{Manager: mgr, config: scoped}, &rotator.CertRotator{
		SecretKey:              secretKey,
		CertDir:                o.CertDir,
		CAName:                 "istio-gateway-operator-webhook-ca",
		CAOrganization:         "istio-gateway-operator",
		DNSName:                o.DNSNames[0],
		ExtraDNSNames:          o.DNSNames[1:],
		IsReady:                serving.injected,
		Webhooks:               []rotator.WebhookInfo{{Name: o.WebhookConfiguration, Type: rotator.Validating}},
		FieldOwner:             v1alpha1.FieldManager,
		RequireLeaderElection:  false,
		ServerCertDuration:     o.Validity,
		LookaheadInterval:      o.RenewBefore,
		RotationCheckFrequency: o.CheckInterval,
		ControllerName:         o.ControllerName,
	}); err != nil {
		return fmt.Errorf("adding cert-controller's rotator: %w", err)
	}

	// The keeper's own view of the one Secret and the one webhook configuration, through
	// the same narrowed config.
	secrets, err := cache.New(scoped, cache.Options{
		Scheme:            mgr.GetScheme(),
		Mapper:            mgr.GetRESTMapper(),
		DefaultNamespaces: map[string]cache.Config{o.Namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Field: fields.OneTermEqualSelector("metadata.name", o.SecretName)},
			&admissionregistrationv1.ValidatingWebhookConfiguration{}: {Field: fields.OneTermEqualSelector("metadata.name", o.WebhookConfiguration)},
		},
	})
	if err != nil {
		return fmt.Errorf("creating the webhook Secret's cache: %w", err)
	}
	if err := mgr.Add(secrets); err != nil {
		return fmt.Errorf("adding the webhook Secret's cache: %w", err)
	}
	keeper := &certificateKeeper{reader: secrets, writer: mgr.GetClient(), key: secretKey, webhookConfiguration: o.WebhookConfiguration, certDir: o.CertDir, serving: serving}
	name := "webhook-certificate"
	if o.ControllerName != "" {
		name = o.ControllerName + "-keeper"
	}
	c, err := controller.New(name, mgr, controller.Options{Reconciler: keeper, NeedLeaderElection: ptr.To(false)})
	if err != nil {
		return fmt.Errorf("creating the webhook certificate keeper: %w", err)
	}
	if err := c.Watch(source.Kind(secrets, &corev1.Secret{}, &handler.TypedEnqueueRequestForObject[*corev1.Secret]{})); err != nil {
		return fmt.Errorf("watching the webhook Secret: %w", err)
	}
	// A caBundle change may let the keeper switch to a pair it held back.
	if err := c.Watch(source.Kind(secrets, &admissionregistrationv1.ValidatingWebhookConfiguration{},
		handler.TypedEnqueueRequestsFromMapFunc(func(context.Context, *admissionregistrationv1.ValidatingWebhookConfiguration) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: secretKey}}
		}))); err != nil {
		return fmt.Errorf("watching the webhook configuration: %w", err)
	}
	return nil
}

// certificateKeeper keeps the Secret that cert-controller fills in existence, and the pair
// it holds in the replica's webhook server and CertDir.
type certificateKeeper struct {
	reader               client.Reader
	writer               client.Client
	key                  types.NamespacedName
	webhookConfiguration string
	certDir              string
	serving              *ServingCertificate
}

// Reconcile recreates the Secret when it is gone (cert-controller only updates it, and then
// issues a new CA into the empty Secret) and otherwise loads its pair.
func (k *certificateKeeper) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if req.NamespacedName != k.key {
		return reconcile.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues("secret", k.key)
	secret := &corev1.Secret{}
	err := k.reader.Get(ctx, k.key, secret)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, createEmptySecret(ctx, k.writer, k.key)
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("reading the webhook certificate Secret %s: %w", k.key, err)
	}
	certPEM, keyPEM, caPEM := secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey], secret.Data["ca.crt"]
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return reconcile.Result{}, nil // cert-controller has not filled it yet; its write is the next event
	}
	trusted, err := k.caBundleHolds(ctx, caPEM)
	if err != nil {
		return reconcile.Result{}, err
	}
	if !trusted && k.serving.current.Load() != nil {
		// A new CA (a deleted Secret, or the old one near its end): the API server would
		// refuse a pair it signs until cert-controller puts it in the caBundle, which is
		// the next event. The old pair is still trusted meanwhile.
		log.V(1).Info("Holding back the new webhook certificate until the webhook configuration trusts its CA")
		return reconcile.Result{}, nil
	}
	k.serving.trusted.Store(trusted)
	if err := k.serving.load(certPEM, keyPEM); err != nil {
		// Not retried: only a new write of the Secret can mend it, and that is an event.
		log.Error(err, "The webhook certificate Secret holds no usable pair; serving keeps the previous one")
		return reconcile.Result{}, nil
	}
	if err := writeFileAtomically(filepath.Join(k.certDir, corev1.TLSPrivateKeyKey), keyPEM); err != nil {
		return reconcile.Result{}, err
	}
	if err := writeFileAtomically(filepath.Join(k.certDir, corev1.TLSCertKey), certPEM); err != nil {
		return reconcile.Result{}, err
	}
	log.V(1).Info("Loaded the webhook serving certificate", "resourceVersion", secret.ResourceVersion)
	return reconcile.Result{}, nil
}

// caBundleHolds tells whether every webhook of the configuration trusts caPEM.
func (k *certificateKeeper) caBundleHolds(ctx context.Context, caPEM []byte) (bool, error) {
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := k.reader.Get(ctx, types.NamespacedName{Name: k.webhookConfiguration}, vwc); apierrors.IsNotFound(err) {
		ctrl.LoggerFrom(ctx).Info("The webhook configuration to keep the caBundle of does not exist; check --webhook-configuration", "webhookConfiguration", k.webhookConfiguration)
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("reading the webhook configuration %s: %w", k.webhookConfiguration, err)
	}
	if len(caPEM) == 0 || len(vwc.Webhooks) == 0 {
		return false, nil
	}
	for _, wh := range vwc.Webhooks {
		if !bytes.Contains(wh.ClientConfig.CABundle, bytes.TrimSpace(caPEM)) {
			return false, nil
		}
	}
	return true, nil
}

// ensureSecret creates the webhook certificate Secret, empty, when it does not exist;
// cert-controller then issues a new CA and serving pair into it.
func ensureSecret(ctx context.Context, reader client.Reader, writer client.Writer, key types.NamespacedName) error {
	err := reader.Get(ctx, key, &corev1.Secret{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading the webhook certificate Secret %s: %w", key, err)
	}
	return createEmptySecret(ctx, writer, key)
}

// createEmptySecret creates the webhook certificate Secret with no data; one already
// there (another replica's) is fine.
func createEmptySecret(ctx context.Context, writer client.Writer, key types.NamespacedName) error {
	empty := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{"app.kubernetes.io/name": "istio-gateway-operator"}},
		Type:       corev1.SecretTypeOpaque,
	}
	if err := writer.Create(ctx, empty, client.FieldOwner(v1alpha1.FieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the webhook certificate Secret %s: %w", key, err)
	}
	ctrl.LoggerFrom(ctx).Info("Created the webhook certificate Secret, which was missing; cert-controller issues a new CA into it", "secret", key)
	return nil
}

func writeFileAtomically(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// scopedManager hands cert-controller a config whose list and watch requests name the one
// Secret and the one webhook configuration; everything else is the manager's.
type scopedManager struct {
	manager.Manager
	config *rest.Config
}

// GetConfig is the narrowed config cert-controller builds its cache from.
func (m scopedManager) GetConfig() *rest.Config { return m.config }

// scopedConfig narrows every list and watch of Secrets in namespace, and of validating
// webhook configurations, to the named object with a metadata.name field selector.
// cert-controller's cache would otherwise list every Secret of the namespace, istiod's CA
// key among them in the managed add-on's namespace, and every webhook configuration; named,
// the requests need only RBAC rules that name the two objects.
func scopedConfig(cfg *rest.Config, namespace, secret, webhookConfiguration string) *rest.Config {
	scoped := rest.CopyConfig(cfg)
	paths := map[string]string{
		"/api/v1/namespaces/" + namespace + "/secrets":                          secret,
		"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations": webhookConfiguration,
	}
	scoped.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			name, ok := "", false
			for path, n := range paths {
				// A suffix: the API server may sit under a path prefix (a proxy's).
				if strings.HasSuffix(strings.TrimSuffix(req.URL.Path, "/"), path) {
					name, ok = n, true
				}
			}
			if !ok || req.Method != http.MethodGet {
				return next.RoundTrip(req)
			}
			narrowed := req.Clone(req.Context())
			narrowed.URL.RawQuery = withNameSelector(req.URL.Query(), name).Encode()
			return next.RoundTrip(narrowed)
		})
	})
	return scoped
}

func withNameSelector(query url.Values, name string) url.Values {
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	if existing := query.Get("fieldSelector"); existing != "" {
		selector = existing + "," + selector
	}
	query.Set("fieldSelector", selector)
	return query
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
