package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// DrainTurnGate is the readiness gate of every broker pod (spec.readinessGates): the pod is
// Ready only once the operator set this condition True, which it does when no other broker
// of the cluster is terminating. A rolling update (maxSurge 1, maxUnavailable 0) deletes the
// next old broker only once the new one is Ready, and the Deployment controller does not
// count terminating pods: without the gate a new broker, which starts faster than an old one
// drains, would let the next old broker start its drain while the previous still runs. With
// it a roll drains one broker at a time and waits for nothing more than the drains.
//
// The condition is set once and never taken back, so only pods that are not yet Ready wait:
// a running broker never leaves its Service because another one terminates.
const DrainTurnGate corev1.PodConditionType = "kafscale.io/drain-turn"

// drainTurnMargin is how long after a terminating pod's deletion timestamp (the end of its
// termination grace) it still counts as draining: the kubelet may give a preStop hook 2 s
// beyond the grace. Past it, a pod that is still listed (a node that stopped answering) no
// longer holds the roll up.
const drainTurnMargin = 5 * time.Second

// gatedByDrainTurn says whether the pod's spec carries the gate and the condition is not
// True yet (pods of an older operator's template carry no gate and are left alone).
func gatedByDrainTurn(p *corev1.Pod) bool {
	gated := false
	for _, g := range p.Spec.ReadinessGates {
		if g.ConditionType == DrainTurnGate {
			gated = true
		}
	}
	if !gated {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == DrainTurnGate && c.Status == corev1.ConditionTrue {
			return false
		}
	}
	return true
}

// drainTurn decides whether pod may become Ready at now: when no other broker pod of the
// same cluster (peers, which may include pod itself) is terminating within its grace. When
// it may not, it returns the draining pod that blocks it and how long that pod's grace
// still runs (the latest such deadline among several).
func drainTurn(pod *corev1.Pod, peers []corev1.Pod, now time.Time) (blocker string, wait time.Duration) {
	cluster := pod.Labels["app.kubernetes.io/instance"]
	for i := range peers {
		p := &peers[i]
		if p.UID == pod.UID || p.Namespace != pod.Namespace || p.Labels["app.kubernetes.io/instance"] != cluster || !isBrokerPod(p) || p.DeletionTimestamp.IsZero() {
			continue
		}
		if d := p.DeletionTimestamp.Add(drainTurnMargin).Sub(now); d > wait {
			blocker, wait = p.Name, d
		}
	}
	return blocker, wait
}

// DrainTurnReconciler sets DrainTurnGate on new broker pods, one drain at a time.
type DrainTurnReconciler struct {
	Client client.Client
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Reconcile: get the pod → nothing to do unless it is a gated, not terminating broker pod →
// list its cluster's broker pods → set the condition, or look again when the blocking pod's
// grace ends (its deletion wakes this reconciler sooner, through BrokerPodsWaitingForTurn).
func (r *DrainTurnReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var pod corev1.Pod
	if err := r.Client.Get(ctx, req.NamespacedName, &pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !isBrokerPod(&pod) || !pod.DeletionTimestamp.IsZero() || !gatedByDrainTurn(&pod) {
		return ctrl.Result{}, nil
	}
	var peers corev1.PodList
	if err := r.Client.List(ctx, &peers, client.InNamespace(pod.Namespace),
		client.MatchingLabels{"app.kubernetes.io/instance": pod.Labels["app.kubernetes.io/instance"]}); err != nil {
		return ctrl.Result{}, fmt.Errorf("broker pods beside %s: %w", pod.Name, err)
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	if blocker, wait := drainTurn(&pod, peers.Items, now); wait > 0 {
		log.FromContext(ctx).V(1).Info("broker pod waits for a drain", "pod", pod.Name, "draining", blocker, "atMost", wait)
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	patch := client.StrategicMergeFrom(pod.DeepCopy())
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
		Type:               DrainTurnGate,
		Status:             corev1.ConditionTrue,
		LastTransitionTime: metav1.NewTime(now),
		Reason:             "NoBrokerDraining",
		Message:            "no other broker of the cluster is draining",
	})
	if err := r.Client.Status().Patch(ctx, &pod, patch); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, nil
}

// BrokerPodsWaitingForTurn maps an event of a broker pod (a terminating one gone, above all)
// to the pods of its cluster still waiting for their turn, and the pod itself.
func BrokerPodsWaitingForTurn(c client.Client) func(context.Context, *corev1.Pod) []reconcile.Request {
	return func(ctx context.Context, p *corev1.Pod) []reconcile.Request {
		reqs := []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(p)}}
		var peers corev1.PodList
		if err := c.List(ctx, &peers, client.InNamespace(p.Namespace),
			client.MatchingLabels{"app.kubernetes.io/instance": p.Labels["app.kubernetes.io/instance"]}); err != nil {
			return reqs
		}
		for i := range peers.Items {
			q := &peers.Items[i]
			if q.UID != p.UID && isBrokerPod(q) && q.DeletionTimestamp.IsZero() && gatedByDrainTurn(q) {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(q)})
			}
		}
		return reqs
	}
}
