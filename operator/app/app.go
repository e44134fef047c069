// Package app wires the operator: a controller-runtime manager restricted to its namespace,
// a leader election gating the reconcilers (an etcd lock, or a Kubernetes Lease when no etcd
// is configured for it), metrics and health endpoints.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kafscale/kafscale/internal/etcdclient"
	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
	"github.com/kafscale/kafscale/operator/controller"
	"github.com/kafscale/kafscale/operator/leader"
)

// Options are what Run needs besides the configuration.
type Options struct {
	Config     *config.Operator
	RestConfig *rest.Config
	Logger     *slog.Logger
	// Elected, when set, is called once this replica leads (tests measure takeovers).
	Elected func()
}

// Scheme knows the built-in types and the KafScale CRDs.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Run runs the operator until ctx ends (nil) or it loses leadership or fails (an error).
func Run(ctx context.Context, o Options) error {
	cfg, log := o.Config, o.Logger
	if log == nil {
		log = slog.Default()
	}
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	pool := controller.NewEtcdPool()
	defer pool.Close()

	ops := &OpsAPI{Config: cfg, Etcd: pool, Log: log}
	if cfg.SnapshotStaleAfter > 0 {
		controller.SetSnapshotStaleAfter(cfg.SnapshotStaleAfter)
	} else {
		controller.SetSnapshotStaleAfter(config.DefaultSnapshotStaleAfter)
	}
	mgrOpts := ctrl.Options{
		Scheme: scheme,
		// The process-wide controller-runtime logger (ctrl.SetLogger) is main's business.
		Logger: logr.FromSlogHandler(log.Handler()),
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{cfg.Namespace: {}},
			// Only broker pods are read (drains, scale-down), so only they are cached.
			ByObject: map[client.Object]cache.ByObject{&corev1.Pod{}: {Label: controller.BrokerPodSelector()}},
		},
		Metrics: metricsserver.Options{
			BindAddress:   cfg.MetricsAddr,
			ExtraHandlers: map[string]http.Handler{SnapshotPath: ops},
		},
		HealthProbeBindAddress:  cfg.HealthAddr,
		GracefulShutdownTimeout: ptr(10 * time.Second),
	}
	// With etcd for the lock, the etcd elector below decides; without, a Kubernetes Lease
	// named after the leader key, through controller-runtime's leader election.
	useLease := len(cfg.LeaderEtcdEndpoints) == 0
	leader.SetLeading(false)
	if useLease {
		lease, renew, retry := leader.LeaseTimings(cfg.LeaderTTL)
		lock, err := leader.NewLeaseLock(o.RestConfig, cfg.Namespace, cfg.LeaderKey, cfg.PodName, renew)
		if err != nil {
			return err
		}
		mgrOpts.LeaderElection = true
		mgrOpts.LeaderElectionResourceLockInterface = lock
		mgrOpts.LeaderElectionID = leader.LeaseName(cfg.LeaderKey)
		mgrOpts.LeaderElectionNamespace = cfg.Namespace
		mgrOpts.LeaderElectionReleaseOnCancel = true // Run returns right after: a stopped leader hands over at once
		mgrOpts.LeaseDuration, mgrOpts.RenewDeadline, mgrOpts.RetryPeriod = &lease, &renew, &retry
	}
	mgr, err := ctrl.NewManager(o.RestConfig, mgrOpts)
	if err != nil {
		return fmt.Errorf("operator manager: %w", err)
	}
	ops.Client = mgr.GetClient()
	if cfg.OperatorImage == "" {
		// The snapshot CronJob runs this operator's own image; find it from this pod.
		var pod corev1.Pod
		err := mgr.GetAPIReader().Get(ctx, types.NamespacedName{Namespace: cfg.Namespace, Name: cfg.PodName}, &pod)
		if err == nil && len(pod.Spec.Containers) > 0 {
			cfg.OperatorImage = pod.Spec.Containers[0].Image
		} else {
			log.Warn("operator image unknown (set KAFSCALE_OPERATOR_IMAGE): no etcd snapshot CronJobs and no restore init containers for managed etcd (condition EtcdSnapshotScheduled=False); the ops API still takes snapshots", "err", err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}

	recorder := mgr.GetEventRecorder("kafscale-operator")
	cluster := &controller.ClusterReconciler{Client: mgr.GetClient(), Scheme: scheme, Config: cfg, Etcd: pool, Preflight: ops.Preflight, Recorder: recorder}
	topic := &controller.TopicReconciler{Client: mgr.GetClient(), Config: cfg, Etcd: pool}
	podDrain := &controller.PodDrainReconciler{Client: mgr.GetClient(), Config: cfg, Etcd: pool, Recorder: recorder}
	drainTurn := &controller.DrainTurnReconciler{Client: mgr.GetClient()}
	ctrls, err := controller.Controllers(mgr, cluster, topic, podDrain, drainTurn)
	if err != nil {
		return err
	}
	if useLease {
		return runLeaseElected(ctx, o, mgr, ctrls)
	}

	lockClient, err := etcdclient.New(clientv3.Config{Endpoints: cfg.LeaderEtcdEndpoints, DialTimeout: 5 * time.Second}, log)
	if err != nil {
		return fmt.Errorf("etcd client for the leader lock: %w", err)
	}
	defer lockClient.Close()
	elector := &leader.Elector{Client: lockClient, Key: cfg.LeaderKey, ID: cfg.PodName, TTL: cfg.LeaderTTL, Log: log}
	if err := mgr.Add(elector); err != nil {
		return err
	}
	if o.Elected != nil {
		go func() {
			select {
			case <-elector.Elected():
				o.Elected()
			case <-ctx.Done():
			}
		}()
	}
	for _, c := range ctrls {
		if err := mgr.Add(elector.Gate(c)); err != nil {
			return err
		}
	}
	log.Info("operator starting", "namespace", cfg.Namespace, "leaderKey", cfg.LeaderKey, "id", cfg.PodName, "lock", "etcd")
	return mgr.Start(ctx)
}

// runLeaseElected runs the manager with the controllers in its leader-election group: they
// start once this replica holds the Lease. Losing the Lease stops the manager with
// leader.ErrLost (exit status 2, as with the etcd lock).
func runLeaseElected(ctx context.Context, o Options, mgr ctrl.Manager, ctrls []ctrlcontroller.Controller) error {
	cfg, log := o.Config, o.Logger
	if log == nil {
		log = slog.Default()
	}
	for _, c := range ctrls {
		if err := mgr.Add(c); err != nil { // controllers need leader election
			return err
		}
	}
	name := leader.LeaseName(cfg.LeaderKey)
	go func() {
		select {
		case <-mgr.Elected():
			log.Info("elected operator leader", "lease", cfg.Namespace+"/"+name, "id", cfg.PodName)
			leader.SetLeading(true)
			if o.Elected != nil {
				o.Elected()
			}
		case <-ctx.Done():
		}
	}()
	log.Info("operator starting", "namespace", cfg.Namespace, "leaderKey", cfg.LeaderKey, "id", cfg.PodName, "lock", "lease "+cfg.Namespace+"/"+name)
	err := mgr.Start(ctx)
	leader.SetLeading(false)
	// controller-runtime reports a lost Lease only by this message.
	if err != nil && ctx.Err() == nil && strings.Contains(err.Error(), "leader election lost") {
		return fmt.Errorf("%w (Lease %s/%s): %v", leader.ErrLost, cfg.Namespace, name, err)
	}
	return err
}

func ptr[T any](v T) *T { return &v }
