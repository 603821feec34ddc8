package controllers

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1ac "k8s.io/client-go/applyconfigurations/coordination/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/api/v1alpha1"
	"github.com/kubegate/istio-gateway-operator/pkg/revision"
)

// Revision discovery defaults: a Lease lives a minute unless renewed every 20 seconds, and
// a starting instance watches the others for 5 seconds before it claims any Gateway.
const (
	DefaultRevisionLeaseDuration = 60 * time.Second
	DefaultRevisionRenewInterval = 20 * time.Second
	DefaultRevisionSettle        = 5 * time.Second
	revisionRecheckInterval      = 2 * time.Second
)

// RevisionLeaseName names the Lease a revision's operator maintains in the system namespace.
func RevisionLeaseName(rev string) string {
	return "istio-gateway-operator-revision-" + revision.Name(rev)
}

// RevisionRegistry is the one source of truth for installed revisions: each revision's
// operator (its leader) keeps a Lease labelled gateway.istio.io/operator-revision in the
// system namespace, and a revision is installed while its Lease is unexpired. Every
// instance reads the same Leases, so every instance computes the same owners.
type RevisionRegistry struct {
	Client  client.Client
	Cache   cache.Cache
	Options Options
	// LeaseDuration, RenewInterval and Settle come from Options or the package defaults.
	LeaseDuration, RenewInterval, Settle time.Duration

	mu          sync.RWMutex
	subscribers []chan event.GenericEvent
	installed   []string
	ready       bool
}

// NewRevisionRegistry returns a registry whose changes are delivered on Changes.
func NewRevisionRegistry(c client.Client, informers cache.Cache, opts Options) *RevisionRegistry {
	orDefault := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	return &RevisionRegistry{
		Client: c, Cache: informers, Options: opts,
		LeaseDuration: orDefault(opts.RevisionLeaseDuration, DefaultRevisionLeaseDuration),
		RenewInterval: orDefault(opts.RevisionRenewInterval, DefaultRevisionRenewInterval),
		Settle:        orDefault(opts.RevisionSettle, DefaultRevisionSettle),
	}
}

// Subscribe returns a channel that delivers an event naming the served GatewayClass each
// time the registry settles or the set of installed revisions changes, so that ownership
// is decided again.
func (r *RevisionRegistry) Subscribe() <-chan event.GenericEvent {
	ch := make(chan event.GenericEvent, 1)
	r.mu.Lock()
	r.subscribers = append(r.subscribers, ch)
	r.mu.Unlock()
	return ch
}

// Installed returns the installed revisions, oldest first, and whether the registry has
// settled; before that the instance claims nothing.
func (r *RevisionRegistry) Installed() ([]string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.installed), r.ready
}

// Decide returns who owns a Gateway, given its istio.io/rev label.
func (r *RevisionRegistry) Decide(gw *gatewayv1.Gateway) (revision.Ownership, bool) {
	installed, ready := r.Installed()
	label, labelled := gw.Labels[v1alpha1.RevisionLabel]
	return revision.Decide(label, labelled, installed), ready
}

// NeedLeaderElection: only the leader announces the revision and reconciles.
func (r *RevisionRegistry) NeedLeaderElection() bool { return true }

// Start announces this revision, then renews its Lease and follows everyone's until ctx ends.
// The Lease is not deleted on shutdown: a restart must not look like an uninstall. An
// uninstall deletes the Lease, or it expires.
func (r *RevisionRegistry) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithValues("revision", revision.Name(r.Options.Revision))
	if err := r.renew(ctx); err != nil {
		return err
	}
	informer, err := r.Cache.GetInformer(ctx, &coordinationv1.Lease{})
	if err != nil {
		return fmt.Errorf("watching revision Leases: %w", err)
	}
	poke := make(chan struct{}, 1)
	notify := func(o any) {
		// The cache holds every Lease of the system namespace (istiod's too): only the
		// revision Leases decide ownership.
		if lease, ok := o.(*coordinationv1.Lease); ok && lease.Labels[v1alpha1.RevisionLeaseLabel] == "" {
			return
		}
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	registration, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: notify, UpdateFunc: func(_, o any) { notify(o) }, DeleteFunc: notify,
	})
	if err != nil {
		return fmt.Errorf("watching revision Leases: %w", err)
	}
	defer func() { _ = informer.RemoveEventHandler(registration) }()

	settled := time.After(r.Settle)
	renew := time.NewTicker(r.RenewInterval)
	defer renew.Stop()
	recheck := time.NewTicker(revisionRecheckInterval)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-settled:
			r.mu.Lock()
			r.ready = true
			r.mu.Unlock()
			logger.Info("Revision registry settled; claiming Gateways")
			r.recompute(ctx, true)
		case <-renew.C:
			if err := r.renew(ctx); err != nil {
				logger.Error(err, "Renewing the revision Lease")
			}
		case <-poke:
			r.recompute(ctx, false)
		case <-recheck.C:
			r.recompute(ctx, false)
		}
	}
}

// renew applies this revision's Lease with a fresh renewTime.
func (r *RevisionRegistry) renew(ctx context.Context) error {
	holder, _ := os.Hostname()
	name := revision.Name(r.Options.Revision)
	lease := coordinationv1ac.Lease(RevisionLeaseName(r.Options.Revision), r.Options.SystemNamespace).
		WithLabels(map[string]string{v1alpha1.RevisionLeaseLabel: name}).
		WithSpec(coordinationv1ac.LeaseSpec().
			WithHolderIdentity(holder).
			WithLeaseDurationSeconds(int32(r.LeaseDuration / time.Second)).
			WithRenewTime(metav1.NewMicroTime(time.Now())))
	if err := r.Client.Apply(ctx, lease, client.FieldOwner(v1alpha1.FieldManagerFor(r.Options.Revision)), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying Lease %s/%s: %w", r.Options.SystemNamespace, RevisionLeaseName(r.Options.Revision), err)
	}
	return nil
}

// recompute reads the Leases and, when the installed set changed (or force), asks for every
// Gateway to be decided again.
func (r *RevisionRegistry) recompute(ctx context.Context, force bool) {
	list := &coordinationv1.LeaseList{}
	if err := r.Client.List(ctx, list, client.InNamespace(r.Options.SystemNamespace), client.HasLabels{v1alpha1.RevisionLeaseLabel}); err != nil {
		log.FromContext(ctx).Error(err, "Listing revision Leases")
		return
	}
	installed := revision.Installed(list.Items, time.Now())
	// This instance is running, whatever its Lease says.
	if self := revision.Name(r.Options.Revision); !slices.Contains(installed, self) {
		installed = append(installed, self)
		sort.Slice(installed, func(i, j int) bool { return revision.Less(installed[i], installed[j]) })
	}
	r.mu.Lock()
	changed := !slices.Equal(installed, r.installed)
	r.installed = installed
	ready := r.ready
	subscribers := slices.Clone(r.subscribers)
	r.mu.Unlock()
	if !ready || (!changed && !force) {
		return
	}
	if changed {
		log.FromContext(ctx).Info("Installed revisions changed", "installed", installed)
	}
	for _, ch := range subscribers {
		select {
		case ch <- event.GenericEvent{Object: &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: r.Options.GatewayClassName}}}:
		case <-ctx.Done():
			return
		}
	}
}

// IsHighest reports whether this instance's revision is the newest installed: it speaks
// for the class (GatewayClass status) and for Gateways no installed revision owns.
func (r *RevisionRegistry) IsHighest() bool {
	installed, ready := r.Installed()
	highest, ok := revision.Highest(installed)
	return ready && ok && highest == revision.Name(r.Options.Revision)
}
