package faults_test

import (
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// writesPerGateway is what a Gateway costs without faults: five applies and a status
// write (BENCHMARKS.md, measured at every N).
const writesPerGateway = 6

var _ = Describe("Injected API errors", func() {
	AfterEach(func() { faults.Clear() })

	It("retries every write refused once with 409, 429 (with and without Retry-After) or 500, converges, and then goes quiet", func(ctx SpecContext) {
		const n = 30
		ns := newNamespace(ctx, "faults-errors")
		var mu sync.Mutex
		refused := map[string]bool{}
		// A 429 with Retry-After is retried inside client-go; one without it, like the
		// others, reaches the operator, which retries with backoff.
		answers := []fault{
			{code: http.StatusConflict}, {code: http.StatusTooManyRequests, retryAfter: true},
			{code: http.StatusTooManyRequests}, {code: http.StatusInternalServerError},
		}
		faults.Set(func(req *http.Request) fault {
			// Events are client-go's broadcaster's business, with its own retries.
			if !isWrite(req) || !strings.Contains(req.URL.Path, "/namespaces/"+ns+"/") || strings.HasSuffix(req.URL.Path, "/events") {
				return pass
			}
			mu.Lock()
			defer mu.Unlock()
			key := req.Method + " " + req.URL.Path
			if refused[key] {
				return pass
			}
			refused[key] = true
			return answers[len(refused)%len(answers)]
		})
		for i := range n {
			Expect(k8sClient.Create(ctx, newGateway(ns, gatewayName(i)))).To(Succeed())
		}
		Eventually(func() (int, error) { return programmed(ctx, ns) }).Should(Equal(n))

		injected := faults.Injected()
		totalInjected := injected[409] + injected[429] + injected[500]
		Expect(injected[409]).To(BeNumerically(">", 0))
		Expect(injected[429]).To(BeNumerically(">", 1))
		Expect(injected[500]).To(BeNumerically(">", 0))

		By("having made exactly one object of each kind per Gateway")
		objects, err := generatedObjects(ctx, ns)
		Expect(err).NotTo(HaveOccurred())
		for kind, items := range objects {
			Expect(items).To(HaveLen(n), kind)
		}

		By("going quiet: no write once everything converged")
		writes := objectWrites(ns)
		Consistently(func() int { return objectWrites(ns) }, 5*time.Second, 250*time.Millisecond).Should(Equal(writes))
		// Every refused write is sent again once; beyond that, a Gateway whose retries
		// outlast the 2 s report delay writes Programmed=False (Pending), maybe again as the
		// quoted error changes, then True. Measured: 396 for 30 Gateways (180 + 180 + 36).
		// The bound allows twice the fault-free-plus-retries count: a retry storm or a hot
		// loop is orders of magnitude above it.
		Expect(writes).To(BeNumerically("<=", 2*(n*writesPerGateway+totalInjected)),
			"writes %d for %d Gateways with %d refused", writes, n, totalInjected)
		AddReportEntry("injected errors", map[string]int{
			"gateways": n, "refused 409": injected[409], "refused 429": injected[429], "refused 500": injected[500],
			"writes sent": writes,
		})
		GinkgoWriter.Printf("%d Gateways, refused 409x%d 429x%d 500x%d, writes sent %d (%.2f per Gateway)\n",
			n, injected[409], injected[429], injected[500], writes, float64(writes)/n)
	})

	It("backs off exponentially on a write that keeps failing, reports it, and recovers when it stops", func(ctx SpecContext) {
		ns := newNamespace(ctx, "faults-stuck")
		stuckPath := "/apis/apps/v1/namespaces/" + ns + "/deployments/stuck-istio"
		faults.Set(func(req *http.Request) fault {
			if req.Method == http.MethodPatch && req.URL.Path == stuckPath {
				return fault{code: http.StatusInternalServerError}
			}
			return pass
		})
		Expect(k8sClient.Create(ctx, newGateway(ns, "stuck"))).To(Succeed())
		Expect(k8sClient.Create(ctx, newGateway(ns, "healthy"))).To(Succeed())
		start := time.Now()

		By("converging the other Gateway meanwhile")
		Eventually(func() (int, error) { return programmed(ctx, ns) }).Should(Equal(1))

		By("saying why on the stuck Gateway's status")
		Eventually(func(g Gomega) {
			gw := &gatewayv1.Gateway{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "stuck"}, gw)).To(Succeed())
			c := meta.FindStatusCondition(gw.Status.Conditions, string(gatewayv1.GatewayConditionProgrammed))
			g.Expect(c).NotTo(BeNil())
			g.Expect(string(c.Status)).To(Equal("False"))
			g.Expect(c.Reason).To(Equal(string(gatewayv1.GatewayReasonPending)))
			g.Expect(c.Message).To(ContainSubstring("Retrying with backoff after API errors: applying Deployment"))
			g.Expect(c.Message).To(ContainSubstring("injected 500"))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			var events eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
			g.Expect(events.Items).To(ContainElement(SatisfyAll(
				HaveField("Regarding.Name", "stuck"),
				HaveField("Type", "Warning"),
				HaveField("Reason", string(gatewayv1.GatewayReasonPending)),
				HaveField("Note", ContainSubstring("injected 500")),
			)))
		}).Should(Succeed())

		By("retrying with a growing delay for ten seconds or more, not in a hot loop")
		Eventually(func() time.Duration { return time.Since(start) }, 15*time.Second, 100*time.Millisecond).
			Should(BeNumerically(">=", 10*time.Second))
		attempts := faults.Seen(http.MethodPatch, stuckPath)
		faults.Clear()
		window := time.Since(start)
		// controller-runtime's per-item backoff starts at 5 ms and doubles, so a window W
		// holds about log2(W / 5 ms) attempts (11 in 10 s); a hot loop would make thousands.
		limit := int(math.Ceil(math.Log2(float64(window)/float64(5*time.Millisecond)))) + 5
		Expect(attempts).To(And(BeNumerically(">=", 5), BeNumerically("<=", limit)), "attempts in %s", window.Round(time.Second))
		GinkgoWriter.Printf("attempts on a write failing for %s: %d\n", window.Round(100*time.Millisecond), attempts)
		AddReportEntry("attempts on a write failing for "+window.Round(time.Second).String(), attempts)

		By("converging once the API server accepts the write again")
		Eventually(func() (int, error) { return programmed(ctx, ns) }, 90*time.Second).Should(Equal(2))
	})
})

// objectWrites counts the operator's writes in the namespace, Events aside.
func objectWrites(namespace string) int {
	total := 0
	for key, v := range requests.WritesIn(namespace) {
		if !strings.HasSuffix(key, " events") {
			total += v
		}
	}
	return total
}
