package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubegate/istio-gateway-operator/controllers"
)

// errNotRendered makes `manager render` exit non-zero when a Gateway's objects could not be
// rendered (its status would say why), after everything is printed.
var errNotRendered = errors.New("not rendered: a Gateway above reports a problem instead of objects")

// runRender is `manager render FILE...`: the objects the reconciler would apply for every
// Gateway in the manifest files, as server-side apply bodies (-o json: byte for byte what it
// sends), with what was dropped or adjusted, for a pull request to show.
func runRender(args []string, stdin io.Reader, stdout io.Writer) error {
	fs, o := offlineFlags("render")
	opts := &o.opts
	fs.StringVar(&opts.Revision, "revision", "", "Control-plane revision to render for; empty is the default revision.")
	fs.StringVar(&opts.ProxyImage, "proxy-image", "", "Proxy image, when the manifests hold no injector ConfigMap of the revision.")
	output := fs.String("o", "yaml", "Output: yaml, or json (the apply requests' bodies, one per line).")
	files, err := o.parse(fs, args)
	if err != nil || files == nil {
		return err
	}
	if *output != "yaml" && *output != "json" {
		return fmt.Errorf("-o %q: want yaml or json", *output)
	}
	scheme, objects, err := o.inputs(files, stdin)
	if err != nil {
		return err
	}
	renderings, err := controllers.RenderOffline(context.Background(), scheme, objects, *opts)
	if err != nil {
		return err
	}
	failed := false
	for _, r := range renderings {
		if *output == "yaml" {
			fmt.Fprintf(stdout, "# Gateway %s\n", r.Gateway)
		}
		for _, f := range r.Findings {
			if *output == "yaml" {
				fmt.Fprintf(stdout, "# not as written: %s\n", f)
			}
		}
		if r.Problem != "" {
			failed = true
			fmt.Fprintf(stdout, "# not rendered: %s\n", r.Problem)
			continue
		}
		for _, body := range r.Objects {
			if *output == "json" {
				fmt.Fprintf(stdout, "%s\n", body)
				continue
			}
			text, err := yaml.JSONToYAML(body)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "---\n%s", text)
		}
	}
	if failed {
		return errNotRendered
	}
	return nil
}

// manifests reads the files into typed objects of the operator's scheme.
func manifests(paths []string, stdin io.Reader, defaultNamespace string) (*runtime.Scheme, []client.Object, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(gatewayv1.Install(scheme))
	var objects []client.Object
	for _, path := range paths {
		read, err := readManifests(scheme, path, stdin, defaultNamespace)
		if err != nil {
			return nil, nil, err
		}
		objects = append(objects, read...)
	}
	return scheme, objects, nil
}
