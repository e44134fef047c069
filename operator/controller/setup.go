package controller

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
)

// Controllers builds the reconcilers' controllers, unmanaged: the caller adds them to the
// manager behind its leader gate, so only the elected replica reconciles.
func Controllers(mgr manager.Manager, cluster *ClusterReconciler, topic *TopicReconciler, podDrain *PodDrainReconciler, drainTurn *DrainTurnReconciler) ([]controller.Controller, error) {
	opts := func(r reconcile.Reconciler) controller.Options {
		// Several managers may run in one process (tests); names need not be unique.
		return controller.Options{Reconciler: r, Logger: mgr.GetLogger(), SkipNameValidation: ptr.To(true), MaxConcurrentReconciles: 2}
	}
	cc, err := controller.NewUnmanaged("kafscalecluster", opts(cluster))
	if err != nil {
		return nil, err
	}
	cache, scheme, mapper := mgr.GetCache(), mgr.GetScheme(), mgr.GetRESTMapper()
	if err := cc.Watch(source.Kind(cache, &v1alpha1.KafscaleCluster{}, &handler.TypedEnqueueRequestForObject[*v1alpha1.KafscaleCluster]{})); err != nil {
		return nil, err
	}
	for _, owned := range []client.Object{&appsv1.Deployment{}, &appsv1.StatefulSet{}, &batchv1.CronJob{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{}, &autoscalingv2.HorizontalPodAutoscaler{}} {
		h := handler.EnqueueRequestForOwner(scheme, mapper, &v1alpha1.KafscaleCluster{}, handler.OnlyControllerOwner())
		if err := cc.Watch(source.Kind(cache, owned, h)); err != nil {
			return nil, err
		}
	}

	// A changed credentials Secret re-runs the S3 preflight of the clusters naming it at once.
	clustersUsing := handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, sec *corev1.Secret) []reconcile.Request {
		var list v1alpha1.KafscaleClusterList
		if err := mgr.GetClient().List(ctx, &list, client.InNamespace(sec.Namespace)); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, c := range list.Items {
			if ref := c.Spec.S3.CredentialsSecretRef; ref != nil && ref.Name == sec.Name {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&c)})
			}
		}
		return reqs
	})
	if err := cc.Watch(source.Kind(cache, &corev1.Secret{}, clustersUsing)); err != nil {
		return nil, err
	}

	// An HPA the operator did not make that targets a broker Deployment (kubectl autoscale)
	// decides whether the operator writes its replicas: re-check when one comes or goes.
	clustersScaledBy := handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, h *autoscalingv2.HorizontalPodAutoscaler) []reconcile.Request {
		var list v1alpha1.KafscaleClusterList
		if err := mgr.GetClient().List(ctx, &list, client.InNamespace(h.Namespace)); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, c := range list.Items {
			if TargetsBrokers(&c, h) {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&c)})
			}
		}
		return reqs
	})
	if err := cc.Watch(source.Kind(cache, &autoscalingv2.HorizontalPodAutoscaler{}, clustersScaledBy)); err != nil {
		return nil, err
	}

	tc, err := controller.NewUnmanaged("kafscaletopic", opts(topic))
	if err != nil {
		return nil, err
	}
	if err := tc.Watch(source.Kind(cache, &v1alpha1.KafscaleTopic{}, &handler.TypedEnqueueRequestForObject[*v1alpha1.KafscaleTopic]{})); err != nil {
		return nil, err
	}
	// A cluster that appears or changes (new etcd endpoints) republishes its topics.
	topicsOf := handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, c *v1alpha1.KafscaleCluster) []reconcile.Request {
		var list v1alpha1.KafscaleTopicList
		if err := mgr.GetClient().List(ctx, &list, client.InNamespace(c.Namespace)); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, t := range list.Items {
			if t.Spec.ClusterRef == c.Name {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&t)})
			}
		}
		return reqs
	})
	if err := tc.Watch(source.Kind(cache, &v1alpha1.KafscaleCluster{}, topicsOf)); err != nil {
		return nil, err
	}

	// Terminating broker pods, to drain their brokers while the preStop hook waits.
	pc, err := controller.NewUnmanaged("brokerpoddrain", opts(podDrain))
	if err != nil {
		return nil, err
	}
	terminatingBroker := predicate.NewTypedPredicateFuncs(func(p *corev1.Pod) bool {
		return isBrokerPod(p) && !p.DeletionTimestamp.IsZero()
	})
	if err := pc.Watch(source.Kind(cache, &corev1.Pod{}, &handler.TypedEnqueueRequestForObject[*corev1.Pod]{}, terminatingBroker)); err != nil {
		return nil, err
	}

	// New broker pods, made Ready (DrainTurnGate) once no other broker of theirs drains; any
	// broker pod's event, a terminating one's deletion above all, looks at the waiting ones.
	gc, err := controller.NewUnmanaged("brokerdrainturn", opts(drainTurn))
	if err != nil {
		return nil, err
	}
	brokerPod := predicate.NewTypedPredicateFuncs(isBrokerPod)
	if err := gc.Watch(source.Kind(cache, &corev1.Pod{}, handler.TypedEnqueueRequestsFromMapFunc(BrokerPodsWaitingForTurn(mgr.GetClient())), brokerPod)); err != nil {
		return nil, err
	}
	return []controller.Controller{cc, tc, pc, gc}, nil
}
