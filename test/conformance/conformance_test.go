//go:build conformance

// The Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance) against the
// end-to-end environment of test/e2e/cluster: the shipped bin/manager under its
// ServiceAccount, a control plane with kwok nodes and MetalLB. Only the Gateway and
// GatewayClass tests that need no data plane run (inScope); the suite's own report goes to
// conformance/report.yaml, logs and diagnostics to bin/conformance. Run it with
// `make conformance`; the suite's flags work after -args (for example
// `-run-test=GatewayModifyListeners`, `-debug`, `-version=v1.2.3`).
package conformance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gatewayv1alpha3 "sigs.k8s.io/gateway-api/apis/v1alpha3"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	gatewayxv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"
	gwconformance "sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/flags"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/features"
	"sigs.k8s.io/yaml"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/test/e2e/cluster"
)

// inScope are the suite's tests this environment can judge: each checks only what the
// operator itself writes (GatewayClass and Gateway status, listener status, the generated
// objects, the address MetalLB assigns to the generated Service). Every other test is
// handed to the suite as SkipTests, so the report counts it as skipped, never as passed:
//   - traffic tests (most HTTPRoute*, TLSRoute* and GRPCRoute* tests, the listener
//     isolation and misdirected-request tests) send requests through the Gateway: they
//     need a data plane, and here kwok only simulates pods, no Envoy runs;
//   - route status tests (HTTPRouteInvalid*, TLSRouteInvalid*, HTTPRouteObservedGenerationBump,
//     the routes' Accepted and ResolvedRefs conditions): a route's parent status is istiod's
//     job when it runs beside the operator, and no istiod runs here;
//   - Mesh, ListenerSet, BackendTLSPolicy, TCPRoute, UDPRoute and GRPCRoute tests need
//     features the operator does not claim (claimedFeatures), so the suite reports them as
//     not supported and leaves them out of the report.
var inScope = []string{
	// GatewayClass status.
	"GatewayClassObservedGenerationBump",
	// Gateway and listener status.
	"GatewayObservedGenerationBump",
	"GatewayModifyListeners",
	"GatewayListenerUnsupportedProtocol",
	"GatewayInvalidRouteKind",
	"GatewayInvalidTLSConfiguration",
	// Listener certificateRefs across namespaces, with and without ReferenceGrants.
	"GatewaySecretInvalidReferenceGrant",
	"GatewaySecretMissingReferenceGrant",
	"GatewaySecretReferenceGrantAllInNamespace",
	"GatewaySecretReferenceGrantSpecific",
	// Attached-route counts and supported kinds on listener status. GatewayWithAttachedRoutes
	// also checks two HTTPRoutes' own conditions, which only a route status writer sets:
	// istiod in production, the operator's --route-status in test/e2e/cluster.
	"GatewayWithAttachedRoutes",
	"GatewayWithAttachedRoutesWithPort8080",
	"TLSRouteListenerPassthroughSupportedKinds",
	"TLSRouteListenerTerminateNotSupported",
	// spec.infrastructure: labels and annotations on the generated objects, parametersRef.
	"GatewayInfrastructureMetadata",
	"GatewayInvalidParametersRef",
	// spec.addresses, served through the generated Service and MetalLB.
	"GatewayStaticAddresses",
	"GatewayOptionalAddressValue",
}

// claimedFeatures are what the in-scope tests need and no more, because a claimed feature
// brings every test that needs only claimed features into the report (skipped when it is
// out of scope) and names the feature as supported there.
var claimedFeatures = []features.FeatureName{
	features.SupportGateway,
	features.SupportReferenceGrant,         // listener certificateRefs in other namespaces
	features.SupportHTTPRoute,              // attached HTTPRoutes counted on listener status
	features.SupportTLSRoute,               // TLSRoute as a supported kind of TLS listeners
	features.SupportGatewayPort8080,        // listeners on 8080
	features.SupportGatewayInfrastructure,  // spec.infrastructure labels, annotations, parametersRef
	features.SupportGatewayStaticAddresses, // spec.addresses as the Service's loadBalancerIP
	features.SupportGatewayAddressEmpty,    // an IPAddress entry without a value
}

// profiles decide what the report can say: the suite's report holds results per profile
// only (a run without one writes no results at all), and a test counts in a profile when
// all its features belong to the profile. GATEWAY-HTTP covers the Gateway, ReferenceGrant,
// HTTPRoute and Gateway-extended tests; GATEWAY-TLS is there so that the two TLSRoute
// listener tests are reported at all. A profile also claims its core features, so its
// out-of-scope core tests (traffic, route status) are listed under skippedTests and the core
// result reads "partially succeeded with N test skips": honest, and never "succeeded".
var profiles = []suite.ConformanceProfileName{
	suite.GatewayHTTPConformanceProfileName,
	suite.GatewayTLSConformanceProfileName,
}

// outcome is what the suite's Hook saw of one test.
type outcome string

const (
	passed  outcome = "PASS"
	failed  outcome = "FAIL"
	skipped outcome = "SKIP"
)

// TestConformance runs the in-scope tests on a fresh environment, so that the report says
// what the operator as shipped does, and writes the suite's report.
func TestConformance(t *testing.T) {
	// The suite logs through controller-runtime; without a logger it complains once per client.
	log.SetLogger(zap.New(zap.WriteTo(os.Stdout), zap.UseDevMode(true)))
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "bin", "conformance")
	opts, err := options(root)
	if err != nil {
		t.Fatal(err)
	}
	// Checked before anything starts: a typo or a missing claim would otherwise turn an
	// in-scope test into a quiet "not supported".
	expected := expectedToRun(opts)
	if opts.SkipTests, err = skipTests(tests.ConformanceTests, opts); err != nil {
		t.Fatal(err)
	}
	if err := opts.Implementation.Validate(); err != nil {
		t.Fatalf("implementation details for the report: %v", err)
	}
	stale, _ := filepath.Glob(filepath.Join(dir, "diagnostics-*.txt"))
	for _, f := range stale {
		_ = os.Remove(f)
	}

	started := time.Now()
	env, err := cluster.Start(t.Context(), cluster.Options{Root: root, Dir: dir})
	if err != nil {
		t.Fatalf("starting the end-to-end environment: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the end-to-end environment: %v", err)
		}
	})
	t.Logf("Environment up in %s; logs in %s", time.Since(started).Round(time.Second), dir)
	if err := connect(&opts, env); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{env: env, dir: dir, expected: expected, outcomes: map[string]outcome{}}
	opts.Hook = rec.hook

	cSuite, err := suite.NewConformanceTestSuite(opts)
	if err != nil {
		t.Fatalf("initializing the conformance suite: %v", err)
	}
	// As the suite's own RunConformanceWithOptions does, the report is written in a cleanup:
	// parallel tests only run after this function returns. Cleanups run last-in first-out,
	// so this one runs after every test and the suite's own cleanups, before env.Stop.
	ran := false
	t.Cleanup(func() {
		rec.finish(t, ran)
		if ran {
			if err := writeReport(t, cSuite, opts.ReportOutputPath); err != nil {
				t.Errorf("writing the conformance report: %v", err)
			}
		} else {
			t.Logf("The suite did not get past its setup: no report written")
		}
		t.Logf("Environment and suite took %s", time.Since(started).Round(time.Second))
	})
	cSuite.Setup(t, tests.ConformanceTests)
	if err := cSuite.Run(t, tests.ConformanceTests); err != nil {
		t.Fatalf("running the conformance suite: %v", err)
	}
	ran = true
}

// options are the suite's options for this operator, before the clients exist; the suite's
// own flags (after -args) override them, as they do in its DefaultOptions.
func options(root string) (suite.ConformanceOptions, error) {
	usable, unusable, err := staticAddresses(cluster.AddressPool)
	if err != nil {
		return suite.ConformanceOptions{}, err
	}
	opts := suite.ConformanceOptions{
		ConfigurableOptions: suite.ConfigurableOptions{
			GatewayClassName: v1alpha1.DefaultGatewayClassName,
			Mode:             flags.DefaultMode,
			// Debug dumps the HTTP exchanges of traffic tests, which do not run here (-debug
			// turns it on).
			Debug: false,
			// The environment is thrown away after the run: deleting the base namespaces
			// would only add minutes.
			CleanupBaseResources: false,
			// Tests share gateway-conformance-infra: a route left behind would change the
			// attached-route counts and MetalLB addresses another test sees.
			CleanupTestResources: true,
			SupportedFeatures:    claimedFeatures,
			ConformanceProfiles:  profiles,
			TimeoutConfig:        config.DefaultTimeoutConfig(),
			ReportOutputPath:     filepath.Join(root, "conformance", "report.yaml"),
			Implementation: confv1.Implementation{
				Organization: "kubegate",
				Project:      "istio-gateway-operator",
				URL:          "https://github.com/kubegate/istio-gateway-operator",
				Contact:      []string{"https://github.com/kubegate/istio-gateway-operator/issues"},
			},
			UsableNetworkAddresses:   []gatewayv1.GatewaySpecAddress{ipAddress(usable)},
			UnusableNetworkAddresses: []gatewayv1.GatewaySpecAddress{ipAddress(unusable)},
		},
		ManifestFS: []fs.FS{&gwconformance.Manifests},
	}
	flags.ApplyAll(&opts.ConfigurableOptions)
	if opts.Implementation.Version == "" {
		if opts.Implementation.Version, err = gitDescribe(root); err != nil {
			return opts, fmt.Errorf("%w (or pass -args -version=<version>)", err)
		}
	}
	return opts, nil
}

// expectedToRun is the in-scope tests less those the suite's -run-test or -skip-tests flags
// leave out on purpose: any other in-scope test that does not run fails the run.
func expectedToRun(opts suite.ConformanceOptions) sets.Set[string] {
	expected := sets.New(inScope...).Difference(sets.New(opts.SkipTests...))
	if opts.RunTest != "" {
		expected = expected.Intersection(sets.New(opts.RunTest))
	}
	return expected
}

// skipTests is every test outside inScope, plus any the -skip-tests flag names. It fails
// when an in-scope test does not exist in this suite version or needs a feature the run
// does not claim, since the suite would then report it as not supported and run nothing.
func skipTests(all []suite.ConformanceTest, opts suite.ConformanceOptions) ([]string, error) {
	claimed := sets.New(opts.SupportedFeatures...).Difference(sets.New(opts.ExemptFeatures...))
	for _, p := range profiles {
		claimed.Insert(profileCoreFeatures(p)...)
	}
	scope := sets.New(inScope...)
	skip := sets.New(opts.SkipTests...)
	found := sets.New[string]()
	var errs []error
	for _, test := range all {
		if !scope.Has(test.ShortName) {
			skip.Insert(test.ShortName)
			continue
		}
		found.Insert(test.ShortName)
		if missing := sets.New(test.Features...).Difference(claimed); missing.Len() > 0 {
			errs = append(errs, fmt.Errorf("in-scope test %s needs unclaimed features %v", test.ShortName, sets.List(missing)))
		}
	}
	for _, name := range sets.List(scope.Difference(found)) {
		errs = append(errs, fmt.Errorf("in-scope test %s is not in this version of the suite", name))
	}
	return sets.List(skip), errors.Join(errs...)
}

// profileCoreFeatures mirrors the suite's rule that a profile claims its core features
// (its profile table is not exported).
func profileCoreFeatures(p suite.ConformanceProfileName) []features.FeatureName {
	switch p {
	case suite.GatewayHTTPConformanceProfileName:
		return sets.List(suite.GatewayHTTPConformanceProfile.CoreFeatures)
	case suite.GatewayTLSConformanceProfileName:
		return sets.List(suite.GatewayTLSConformanceProfile.CoreFeatures)
	}
	return nil
}

// staticAddresses are GatewayStaticAddresses' usable and unusable addresses, taken from
// MetalLB's pool so that they follow it: the pool's last address, which MetalLB (lowest
// free address first) hands to a dynamic Service only once the rest of the pool is taken,
// and the first address past the pool, a valid IP that MetalLB never assigns.
func staticAddresses(pool string) (usable, unusable netip.Addr, err error) {
	_, last, ok := strings.Cut(pool, "-")
	if !ok {
		return usable, unusable, fmt.Errorf("address pool %q is not a first-last range", pool)
	}
	if usable, err = netip.ParseAddr(strings.TrimSpace(last)); err != nil {
		return usable, unusable, fmt.Errorf("address pool %q: %w", pool, err)
	}
	unusable = usable.Next()
	if !unusable.IsValid() {
		return usable, unusable, fmt.Errorf("address pool %q ends at the last address of its family", pool)
	}
	return usable, unusable, nil
}

func ipAddress(a netip.Addr) gatewayv1.GatewaySpecAddress {
	return gatewayv1.GatewaySpecAddress{Type: new(gatewayv1.IPAddressType), Value: a.String()}
}

func gitDescribe(root string) (string, error) {
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git describe --always --dirty in %s: %w", root, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// connect gives the suite admin clients of the environment, with a scheme holding every
// Gateway API version its tests read (as its DefaultOptions installs) and the CRDs it
// checks for the bundle version. The suite builds a client per test from ClientOptions and
// RestConfig (setting the user agent on the latter), hence the scheme there and the copy.
func connect(opts *suite.ConformanceOptions, env *cluster.Cluster) error {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		apiextensionsv1.AddToScheme,
		gatewayv1.Install,
		gatewayv1beta1.Install,
		gatewayv1alpha2.Install,
		gatewayv1alpha3.Install,
		gatewayxv1alpha1.Install,
	} {
		if err := add(scheme); err != nil {
			return fmt.Errorf("building the suite's scheme: %w", err)
		}
	}
	opts.RestConfig = rest.CopyConfig(env.Config)
	opts.ClientOptions = client.Options{Scheme: scheme}
	var err error
	if opts.Client, err = client.New(opts.RestConfig, opts.ClientOptions); err != nil {
		return fmt.Errorf("creating the suite's client: %w", err)
	}
	if opts.Clientset, err = kubernetes.NewForConfig(opts.RestConfig); err != nil {
		return fmt.Errorf("creating the suite's clientset: %w", err)
	}
	return nil
}

// recorder keeps each test's outcome as the suite's Hook sees it and, when a test fails,
// saves the environment's state then, before later tests change it.
type recorder struct {
	env      *cluster.Cluster
	dir      string
	expected sets.Set[string]
	mu       sync.Mutex
	outcomes map[string]outcome
}

// hook runs in each test's last cleanup (its own objects are already deleted; events and
// the operator's log still tell what happened), concurrently for parallel tests.
func (r *recorder) hook(t *testing.T, test suite.ConformanceTest, _ *suite.ConformanceTestSuite) {
	o := outcomeOf(t)
	r.mu.Lock()
	r.outcomes[test.ShortName] = o
	r.mu.Unlock()
	if o == failed {
		path := r.diagnose(test.ShortName)
		t.Logf("Diagnostics in %s", path)
	}
}

// outcomeOf reads how the suite left a test: failed, skipped (by the suite, for an
// unsupported feature or an out-of-scope test), or passed.
func outcomeOf(tb testing.TB) outcome {
	switch {
	case tb.Failed():
		return failed
	case tb.Skipped():
		return skipped
	}
	return passed
}

// diagnose writes the environment's state to diagnostics-<name>.txt and returns its path.
func (r *recorder) diagnose(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var b strings.Builder
	b.WriteString(r.env.Diagnostics(ctx))
	args := []string{"get", "gatewayclasses,gateways,httproutes,tlsroutes,referencegrants", "-A", "-o", "yaml"}
	out, errOut, err := r.env.Kubectl(ctx, "", args...)
	fmt.Fprintf(&b, "$ kubectl %s\n%s%s", strings.Join(args, " "), out, errOut)
	if err != nil {
		fmt.Fprintf(&b, "(%v)\n", err)
	}
	path := filepath.Join(r.dir, "diagnostics-"+name+".txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err.Error()
	}
	return path
}

// finish prints one line per in-scope test and fails the run when an in-scope test was
// skipped or never ran (unless the suite's flags left it out), when a component of the environment died, or when the operator
// met a permission it lacks (as the end-to-end suite does). The same lines go to
// results.txt beside the logs.
func (r *recorder) finish(t *testing.T, ran bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	counts := map[outcome]int{}
	for _, name := range inScope {
		o, ok := r.outcomes[name]
		switch {
		case !ok:
			o = "NOT RUN"
			if ran && r.expected.Has(name) {
				t.Errorf("In-scope test %s did not run", name)
			}
		case o == skipped && r.expected.Has(name):
			t.Errorf("In-scope test %s was skipped; see its output for the suite's reason", name)
		}
		counts[o]++
		fmt.Fprintf(&b, "%-8s %s\n", o, name)
	}
	outOfScope := 0
	for name, o := range r.outcomes {
		if o == skipped && !slices.Contains(inScope, name) {
			outOfScope++
		}
	}
	fmt.Fprintf(&b, "%d in scope: %d passed, %d failed, %d skipped; %d other suite tests skipped (out of scope or unsupported)\n",
		len(inScope), counts[passed], counts[failed], counts[skipped], outOfScope)
	t.Logf("Results of the in-scope tests:\n%s", b.String())
	if err := os.WriteFile(filepath.Join(r.dir, "results.txt"), []byte(b.String()), 0o644); err != nil {
		t.Errorf("writing results.txt: %v", err)
	}
	// A failure outside the tests (the suite's setup above all) has no Hook to gather the
	// state for it.
	if t.Failed() && counts[failed] == 0 {
		t.Logf("Diagnostics in %s", r.diagnose("run"))
	}
	select {
	case err := <-r.env.Failed():
		t.Errorf("%v (logs in %s)", err, r.dir)
	default:
	}
	logData, err := os.ReadFile(r.env.ManagerLog)
	if err != nil {
		t.Errorf("reading the operator's log: %v", err)
		return
	}
	if lines := linesMatching(logData, `(?i)forbidden|panic`); len(lines) > 0 {
		t.Errorf("The operator met permissions it lacks or panicked (%s):\n%s", r.env.ManagerLog, strings.Join(lines, "\n"))
	}
}

func linesMatching(data []byte, pattern string) []string {
	re := regexp.MustCompile(pattern)
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if re.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// writeReport writes the suite's own report (the YAML its -report-output writes) and logs
// it, as the suite's RunConformanceWithOptions does.
func writeReport(t *testing.T, s *suite.ConformanceTestSuite, path string) error {
	report, err := s.Report()
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(report)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	t.Logf("Conformance report (%s):\n%s", path, data)
	return nil
}
