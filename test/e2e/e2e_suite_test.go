//go:build e2e

// The end-to-end suite: the shipped bin/manager, under its ServiceAccount, against a control
// plane with its controllers, kwok nodes and MetalLB, driven with kubectl as a user would.
// Run it with `make test-e2e` (part of `make test`).
package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubegate/istio-gateway-operator/test/e2e/cluster"
)

var env *cluster.Cluster

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end Suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	SetDefaultEventuallyTimeout(90 * time.Second)
	SetDefaultEventuallyPollingInterval(500 * time.Millisecond)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	env, err = cluster.Start(ctx, cluster.Options{Root: root, Dir: filepath.Join(root, "bin", "e2e", "suite")})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		Expect(env.Stop()).To(Succeed())
	})
}, NodeTimeout(3*time.Minute))

// A component that died (the operator above all) fails the spec by name, rather than as
// the timeouts it would cause.
var _ = AfterEach(func() {
	if env == nil || env.Cluster == nil {
		return
	}
	select {
	case err := <-env.Failed():
		Fail(err.Error() + " (logs in " + env.Dir + ")")
	default:
	}
})

// On a failure, the objects, events and the operator's log go to the report and to a file.
var _ = ReportAfterEach(func(report SpecReport) {
	if !report.Failed() || env == nil || env.Cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	diagnostics := env.Diagnostics(ctx)
	path := filepath.Join(env.Dir, "diagnostics-"+strings.ReplaceAll(report.LeafNodeText, " ", "_")+".txt")
	_ = os.WriteFile(path, []byte(diagnostics), 0o644)
	AddReportEntry("diagnostics ("+path+")", diagnostics)
})

// kubectl runs kubectl as the cluster admin and fails the spec when it fails.
func kubectl(ctx context.Context, args ...string) string {
	GinkgoHelper()
	stdout, stderr, err := env.Kubectl(ctx, "", args...)
	Expect(err).NotTo(HaveOccurred(), "kubectl %s: %s", strings.Join(args, " "), stderr)
	return stdout
}

// row is the data line of a `kubectl get <kind> <name>` table, keyed by column header.
func row(ctx context.Context, args ...string) (map[string]string, error) {
	stdout, stderr, err := env.Kubectl(ctx, "", append([]string{"get"}, args...)...)
	if err != nil {
		return nil, &kubectlError{stderr: stderr, err: err}
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 {
		return nil, &kubectlError{stderr: "expected a header and one row, got:\n" + stdout}
	}
	return parseRow(lines[0], lines[1]), nil
}

type kubectlError struct {
	stderr string
	err    error
}

func (e *kubectlError) Error() string {
	if e.err == nil {
		return e.stderr
	}
	return e.err.Error() + ": " + e.stderr
}

// parseRow splits a table row at the header's column starts, so that values with
// spaces (a HPA's "cpu: <unknown>/80%") stay whole.
func parseRow(header, line string) map[string]string {
	var starts []int
	var names []string
	for i := 0; i < len(header); {
		if header[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(header) && !(header[j] == ' ' && j+1 < len(header) && header[j+1] == ' ') && !(header[j] == ' ' && j+1 == len(header)) {
			j++
		}
		starts = append(starts, i)
		names = append(names, strings.TrimSpace(header[i:j]))
		i = j
	}
	out := make(map[string]string, len(names))
	for k, start := range starts {
		end := len(line)
		if k+1 < len(starts) && starts[k+1] < len(line) {
			end = starts[k+1]
		}
		if start < len(line) {
			out[names[k]] = strings.TrimSpace(line[start:end])
		}
	}
	return out
}
