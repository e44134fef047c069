// Package app wires the operator: a controller-runtime manager restricted to its namespace,
// an etcd leader elector gating the reconcilers, metrics and health endpoints.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
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
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

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
	mgr, err := ctrl.NewManager(o.RestConfig, ctrl.Options{
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
		HealthProbeBindAddress: cfg.HealthAddr,
		// Leadership is decided in etcd by the elector below, not by a Kubernetes Lease.
		LeaderElection:          false,
		GracefulShutdownTimeout: ptr(10 * time.Second),
	})
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
			log.Warn("operator image unknown (set KAFSCALE_OPERATOR_IMAGE): no etcd snapshot CronJobs; the ops API still takes snapshots", "err", err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}

	lockClient, err := clientv3.New(clientv3.Config{Endpoints: cfg.LeaderEtcdEndpoints, DialTimeout: 5 * time.Second})
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

	recorder := mgr.GetEventRecorder("kafscale-operator")
	cluster := &controller.ClusterReconciler{Client: mgr.GetClient(), Scheme: scheme, Config: cfg, Etcd: pool, Preflight: ops.Preflight, Recorder: recorder}
	topic := &controller.TopicReconciler{Client: mgr.GetClient(), Config: cfg, Etcd: pool}
	podDrain := &controller.PodDrainReconciler{Client: mgr.GetClient(), Config: cfg, Etcd: pool, Recorder: recorder}
	ctrls, err := controller.Controllers(mgr, cluster, topic, podDrain)
	if err != nil {
		return err
	}
	for _, c := range ctrls {
		if err := mgr.Add(elector.Gate(c)); err != nil {
			return err
		}
	}
	log.Info("operator starting", "namespace", cfg.Namespace, "leaderKey", cfg.LeaderKey, "id", cfg.PodName)
	return mgr.Start(ctx)
}

func ptr[T any](v T) *T { return &v }
