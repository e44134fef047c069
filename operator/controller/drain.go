package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	"github.com/kafscale/kafscale/broker/control"
	"github.com/kafscale/kafscale/broker/control/controlpb"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
)

// PodDeletionCostAnnotation is read by the ReplicaSet controller: of the ready pods, those
// with the lowest cost are deleted first on scale-down. The operator sets it to
// ScaleDownDeletionCost on the brokers it drained for a scale-down.
const (
	PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"
	ScaleDownDeletionCost     = "-1000000"
)

// errNoControl: the pod's broker is registered without a control address (its
// KAFSCALE_CONTROL_ADDR is unset); only its SIGTERM drains it.
var errNoControl = errors.New("broker serves no control service")

// memberOf returns the registration of the broker running in the named pod.
func memberOf(members []metadata.Member, pod string) (metadata.Member, bool) {
	for _, m := range members {
		if m.Pod == pod {
			return m, true
		}
	}
	return metadata.Member{}, false
}

// controlTarget is the address the operator dials for a broker: the pod IP with the
// registered control port when the pod has an IP (the registered host may be an advertised
// name for clients, not the pod), else the registered address as it is.
func controlTarget(pod *corev1.Pod, m metadata.Member) (string, error) {
	if m.ControlAddr == "" {
		return "", fmt.Errorf("broker %d in pod %s: %w (KAFSCALE_CONTROL_ADDR is unset); it drains on SIGTERM only", m.NodeID, pod.Name, errNoControl)
	}
	_, port, err := net.SplitHostPort(m.ControlAddr)
	if err != nil {
		return "", fmt.Errorf("broker %d in pod %s registered a bad control address %q: %w", m.NodeID, pod.Name, m.ControlAddr, err)
	}
	if ip := pod.Status.PodIP; ip != "" {
		return net.JoinHostPort(ip, port), nil
	}
	return m.ControlAddr, nil
}

// drainOutcome is what drainPod did.
type drainOutcome struct {
	NodeID   int32
	Drained  bool // a Drain call succeeded (false: nothing registered for the pod, nothing to drain)
	Response *controlpb.DrainResponse
	Took     time.Duration
}

// drainPod drains the broker running in pod, if one is registered for it, through its
// control service. A pod whose broker is not registered (not started, already drained,
// dead) needs nothing.
func (d *brokerDrainer) drainPod(ctx context.Context, c *v1alpha1.KafscaleCluster, pod *corev1.Pod, reason string) (drainOutcome, error) {
	endpoints, _ := EtcdEndpoints(c, d.Config)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	store, err := d.Etcd.Store(sctx, endpoints, metadata.Keys{Namespace: c.Namespace, Cluster: c.Name})
	if err != nil {
		return drainOutcome{}, fmt.Errorf("find the broker of pod %s: %w", pod.Name, err)
	}
	members, err := store.Members(sctx)
	if err != nil {
		return drainOutcome{}, fmt.Errorf("find the broker of pod %s: %w", pod.Name, err)
	}
	m, ok := memberOf(members, pod.Name)
	if !ok {
		return drainOutcome{NodeID: -1}, nil
	}
	addr, err := controlTarget(pod, m)
	if err != nil {
		return drainOutcome{NodeID: m.NodeID}, err
	}
	cli, err := control.Dial(addr)
	if err != nil {
		return drainOutcome{NodeID: m.NodeID}, err
	}
	defer cli.Close()
	timeout := d.Config.BrokerDrainTimeout
	if timeout <= 0 {
		timeout = config.DefaultBrokerDrainTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	resp, err := cli.Drain(dctx, m.NodeID, reason)
	took := time.Since(start)
	if err != nil {
		brokerDrains.WithLabelValues(c.Name, "failed").Inc()
		return drainOutcome{NodeID: m.NodeID, Took: took}, fmt.Errorf("drain broker %d of pod %s: %w", m.NodeID, pod.Name, err)
	}
	result := "drained"
	if resp.AlreadyDrained {
		result = "already_drained"
	}
	brokerDrains.WithLabelValues(c.Name, result).Inc()
	brokerDrainSeconds.WithLabelValues(c.Name).Observe(took.Seconds())
	return drainOutcome{NodeID: m.NodeID, Drained: true, Response: resp, Took: took}, nil
}

// brokerDrainer is what both drain paths (terminating pods, scale-down) share.
type brokerDrainer struct {
	Config *config.Operator
	Etcd   *EtcdPool
	// Recorder, when set, puts an event on the pod for each drain (kubectl describe pod).
	Recorder events.EventRecorder
}

// drainAndRecord is drainPod plus a Normal event on success, a Warning on failure.
func (d *brokerDrainer) drainAndRecord(ctx context.Context, c *v1alpha1.KafscaleCluster, pod *corev1.Pod, reason string) (drainOutcome, error) {
	out, err := d.drainPod(ctx, c, pod, reason)
	if d.Recorder != nil {
		switch {
		case err != nil:
			d.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, "DrainFailed", "Drain", "%s", err.Error())
		case out.Drained && !out.Response.AlreadyDrained:
			d.Recorder.Eventf(pod, nil, corev1.EventTypeNormal, "Drained", "Drain", "%s: %s", reason, drainSummary(out))
		}
	}
	return out, err
}

// scaleDownVictims picks the n pods a scale-down removes, in the ReplicaSet controller's own
// order where it decides before the deletion cost (unscheduled, pending, not ready first),
// so the pods drained are the pods deleted. Pods marked in an earlier reconcile come first
// (a scale-down interrupted midway picks the same brokers again), then, among equals, the
// newest. Terminating pods are never picked: they are leaving already.
func scaleDownVictims(pods []corev1.Pod, n int) []*corev1.Pod {
	var live []*corev1.Pod
	for i := range pods {
		if pods[i].DeletionTimestamp == nil {
			live = append(live, &pods[i])
		}
	}
	rank := func(p *corev1.Pod) [4]int {
		marked, scheduled, running, ready := 1, 1, 1, 1
		if p.Annotations[PodDeletionCostAnnotation] == ScaleDownDeletionCost {
			marked = 0
		}
		if p.Spec.NodeName == "" {
			scheduled = 0
		}
		if p.Status.Phase == corev1.PodPending {
			running = 0
		}
		if !podReady(p) {
			ready = 0
		}
		return [4]int{marked, scheduled, running, ready}
	}
	sort.SliceStable(live, func(i, j int) bool {
		ri, rj := rank(live[i]), rank(live[j])
		if ri != rj {
			for k := range ri {
				if ri[k] != rj[k] {
					return ri[k] < rj[k]
				}
			}
		}
		if ti, tj := live[i].CreationTimestamp, live[j].CreationTimestamp; !ti.Equal(&tj) {
			return tj.Before(&ti)
		}
		return live[i].Name > live[j].Name
	})
	if n > len(live) {
		n = len(live)
	}
	if n < 0 {
		n = 0
	}
	return live[:n]
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// drainSummary is a one-line account of a drain for logs and events.
func drainSummary(o drainOutcome) string {
	if !o.Drained {
		return "no broker registered for the pod: nothing to drain"
	}
	r := o.Response
	if r.AlreadyDrained {
		return "broker " + strconv.Itoa(int(o.NodeID)) + " was drained already"
	}
	return fmt.Sprintf("broker %d drained in %s: %d partitions released, %d buffered bytes flushed", o.NodeID, o.Took.Round(time.Millisecond), len(r.Released), r.FlushedBytes)
}
