package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
)

// PodDrainReconciler drains the broker of every terminating broker pod — whoever deletes it:
// a rolling update, an HPA or a scale-down, an eviction, a person — through the broker's
// control service, while the pod's preStop hook (`drain-wait`) holds SIGTERM back. Once the
// broker deregistered there is nothing left to do for the pod.
type PodDrainReconciler struct {
	Client client.Client
	Config *config.Operator
	Etcd   *EtcdPool
	// Recorder, when set, records Drained / DrainFailed events on the pods.
	Recorder events.EventRecorder
}

// Reconcile: get the pod → ignore not-found and pods not terminating → its cluster → drain.
func (r *PodDrainReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	var pod corev1.Pod
	if err := r.Client.Get(ctx, req.NamespacedName, &pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pod.DeletionTimestamp.IsZero() || !isBrokerPod(&pod) {
		return ctrl.Result{}, nil
	}
	var c v1alpha1.KafscaleCluster
	name := pod.Labels["app.kubernetes.io/instance"]
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: name}, &c); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil // the cluster is gone; its pods go with it
		}
		return ctrl.Result{}, fmt.Errorf("cluster %s of terminating pod %s: %w", name, pod.Name, err)
	}
	d := &brokerDrainer{Config: r.Config, Etcd: r.Etcd, Recorder: r.Recorder}
	out, err := d.drainAndRecord(ctx, &c, &pod, "pod "+pod.Name+" is terminating")
	if err != nil {
		// Retried with backoff while the pod exists; its SIGTERM drains it if we never get
		// through.
		return ctrl.Result{}, err
	}
	if out.Drained {
		logger.Info("drained the broker of a terminating pod", "pod", pod.Name, "cluster", c.Name, "result", drainSummary(out))
	}
	return ctrl.Result{}, nil
}

// BrokerPodSelector selects the pods of every broker Deployment the operator made.
func BrokerPodSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{
		"app.kubernetes.io/name":       "kafscale-broker",
		"app.kubernetes.io/component":  "broker",
		"app.kubernetes.io/managed-by": "kafscale-operator",
	})
}

// isBrokerPod says whether the operator made the pod's Deployment.
func isBrokerPod(p *corev1.Pod) bool {
	l := p.Labels
	return l["app.kubernetes.io/name"] == "kafscale-broker" && l["app.kubernetes.io/component"] == "broker" &&
		l["app.kubernetes.io/managed-by"] == "kafscale-operator" && l["app.kubernetes.io/instance"] != ""
}
