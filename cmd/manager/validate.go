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
	fs, opts := offlineFlags("validate")
	files, err := parseOffline(fs, args)
	if err != nil || files == nil {
		return err
	}
	scheme, objects, err := manifests(files, stdin)
	if err != nil {
		return err
	}
	verdicts, err := controllers.ValidateOffline(context.Background(), scheme, objects, *opts)
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
func readManifests(scheme *runtime.Scheme, path string, stdin io.Reader) ([]client.Object, error) {
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
			obj.SetNamespace("default")
		}
		out = append(out, obj)
	}
}

// offlineFlags are the flags `manager validate` and `manager render` share: the class and
// namespace the operator would run with.
func offlineFlags(command string) (*flag.FlagSet, *controllers.Options) {
	fs := flag.NewFlagSet("manager "+command, flag.ContinueOnError)
	opts := &controllers.Options{}
	fs.StringVar(&opts.GatewayClassName, "gateway-class", v1alpha1.DefaultGatewayClassName, "GatewayClass the operator creates when missing (assumed present).")
	fs.StringVar(&opts.SystemNamespace, "system-namespace", v1alpha1.DefaultSystemNamespace, "Control-plane namespace: class defaults and the revision's ConfigMaps.")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: manager %s [flags] FILE...  (YAML or JSON manifests; - reads standard input)\n", command)
		fs.PrintDefaults()
	}
	return fs, opts
}

// parseOffline parses the flags and returns the manifest files; none and no error after
// -help.
func parseOffline(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return nil, errors.New("no manifest files given")
	}
	return fs.Args(), nil
}
