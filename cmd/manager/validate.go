package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/controllers"
)

// errRefused makes `manager validate` exit non-zero when the webhooks would refuse an
// object, after every verdict is printed.
var errRefused = errors.New("refused: the admission webhooks would reject the objects above")

// runValidate is `manager validate FILE...`: the webhooks' rules applied to the Gateways
// and ConfigMaps of manifest files ("-" is standard input), with the files as the whole
// cluster, for a CI pipeline that keeps them in Git.
func runValidate(args []string, stdin io.Reader, stdout io.Writer) error {
	fs, o := offlineFlags("validate")
	files, err := o.parse(fs, args)
	if err != nil || files == nil {
		return err
	}
	scheme, objects, err := o.inputs(files, stdin)
	if err != nil {
		return err
	}
	verdicts, err := controllers.ValidateOffline(context.Background(), scheme, objects, o.opts)
	if err != nil {
		return err
	}
	refused := false
	for _, v := range verdicts {
		fmt.Fprint(stdout, v.String())
		refused = refused || !v.Allowed
	}
	if refused {
		return errRefused
	}
	return nil
}

// readManifests decodes every document of a file into the scheme's typed objects; kinds
// the scheme does not know are skipped, as the webhooks never see them.
func readManifests(scheme *runtime.Scheme, path string, stdin io.Reader, defaultNamespace string) ([]client.Object, error) {
	var in io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("reading manifests: %w", err)
		}
		defer f.Close()
		in = f
	}
	decoder := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(in), 4096)
	var out []client.Object
	for doc := 1; ; doc++ {
		u := &unstructured.Unstructured{}
		if err := decoder.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: document %d: %w", path, doc, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		typed, err := scheme.New(u.GroupVersionKind())
		if err != nil {
			continue
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
			return nil, fmt.Errorf("%s: document %d (%s %s): %w", path, doc, u.GetKind(), u.GetName(), err)
		}
		obj, ok := typed.(client.Object)
		if !ok {
			continue
		}
		if obj.GetNamespace() == "" && !strings.HasSuffix(u.GetKind(), "Class") && u.GetKind() != "Namespace" {
			obj.SetNamespace(defaultNamespace)
		}
		out = append(out, obj)
	}
}

// offline holds the flags `manager validate` and `manager render` share: the class and
// namespace the operator would run with, and whether the files are laid over the cluster.
type offline struct {
	opts        controllers.Options
	fromCluster bool
	namespace   string
}

func offlineFlags(command string) (*flag.FlagSet, *offline) {
	fs := flag.NewFlagSet("manager "+command, flag.ContinueOnError)
	o := &offline{}
	fs.StringVar(&o.opts.GatewayClassName, "gateway-class", v1alpha1.DefaultGatewayClassName, "GatewayClass the operator creates when missing (assumed present).")
	fs.StringVar(&o.opts.SystemNamespace, "system-namespace", v1alpha1.DefaultSystemNamespace, "Control-plane namespace: class defaults and the revision's ConfigMaps.")
	fs.BoolVar(&o.fromCluster, "from-cluster", false, "Start from the current cluster (--kubeconfig, or the usual kubeconfig): its GatewayClasses, Gateways, Namespaces, system-namespace ConfigMaps and referenced ConfigMaps, with the files' objects in place of theirs. Reads only.")
	fs.StringVar(&o.namespace, "n", "", "Namespace of the files' objects that name none (default: default); with --from-cluster, also only the Gateways of this namespace are read.")
	if kubeconfig := flag.CommandLine.Lookup("kubeconfig"); kubeconfig != nil {
		fs.Var(kubeconfig.Value, kubeconfig.Name, kubeconfig.Usage)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: manager %s [flags] FILE...  (YAML or JSON manifests; - reads standard input; with --from-cluster the files are optional)\n", command)
		fs.PrintDefaults()
	}
	return fs, o
}

// parse parses the flags and returns the manifest files; nil and no error after -help.
func (o *offline) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, err
	}
	if fs.NArg() == 0 && !o.fromCluster {
		fs.Usage()
		return nil, errors.New("no manifest files given (or --from-cluster)")
	}
	return append([]string{}, fs.Args()...), nil
}

// inputs are the objects the commands judge: the files', over the cluster's with
// --from-cluster.
func (o *offline) inputs(files []string, stdin io.Reader) (*runtime.Scheme, []client.Object, error) {
	defaultNamespace := "default"
	if o.namespace != "" {
		defaultNamespace = o.namespace // as kubectl apply -n would place them
	}
	scheme, objects, err := manifests(files, stdin, defaultNamespace)
	if err != nil || !o.fromCluster {
		return scheme, objects, err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	reader, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	world, err := controllers.ClusterInputs(context.Background(), reader, scheme, o.opts, o.namespace, objects)
	if err != nil {
		return nil, nil, err
	}
	return scheme, world, nil
}
