package controller

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/operator/config"
)

func TestBrokerDeploymentDrainWiring(t *testing.T) {
	cases := []struct {
		name    string
		cfg     func(*config.Operator)
		command string
	}{
		{"defaults", nil, "/kafscale-broker drain-wait -timeout 25s"},
		{"configured", func(c *config.Operator) { c.BrokerBinary, c.BrokerDrainWait = "/usr/bin/broker", 10*time.Second },
			"/usr/bin/broker drain-wait -timeout 10s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := testInputs()
			if tc.cfg != nil {
				tc.cfg(in.Config)
			}
			d := BrokerDeployment(newCluster(), in)
			pod := d.Spec.Template.Spec
			c := pod.Containers[0]
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
				t.Fatalf("lifecycle %+v, want an exec preStop hook (the image has no shell)", c.Lifecycle)
			}
			if got := strings.Join(c.Lifecycle.PreStop.Exec.Command, " "); got != tc.command {
				t.Errorf("preStop %q, want %q", got, tc.command)
			}
			// The preStop wait and the broker's 30 s SIGTERM drain fit in the grace period.
			if grace := *pod.TerminationGracePeriodSeconds; grace != 60 {
				t.Errorf("terminationGracePeriodSeconds %d, want 60", grace)
			}
			var control *corev1.ContainerPort
			for i, p := range c.Ports {
				if p.Name == "control" {
					control = &c.Ports[i]
				}
			}
			if control == nil || control.ContainerPort != 9094 || control.Protocol != corev1.ProtocolTCP {
				t.Errorf("ports %+v, want control 9094/TCP", c.Ports)
			}
			env := envMap(c.Env)
			if e := env["KAFSCALE_CONTROL_ADDR"]; e.Value != ":9094" {
				t.Errorf("KAFSCALE_CONTROL_ADDR = %+v, want :9094", e)
			}
			if f := env["KAFSCALE_POD_NAME"].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("KAFSCALE_POD_NAME = %+v, want the pod name (downward API)", env["KAFSCALE_POD_NAME"])
			}
		})
	}
	// The preStop wait is part of the pod spec: changing it rolls the brokers.
	in := testInputs()
	in.Config.BrokerDrainWait = 5 * time.Second
	if BrokerDeployment(newCluster(), in).Spec.Template.Annotations[InputHashAnnotation] ==
		BrokerDeployment(newCluster(), testInputs()).Spec.Template.Annotations[InputHashAnnotation] {
		t.Error("input hash unchanged by a new preStop wait")
	}
}

func TestControlTarget(t *testing.T) {
	m := metadata.Member{Broker: metadata.Broker{NodeID: 3, Host: "kafka.example.com"}, Pod: "b-1", ControlAddr: "kafka.example.com:9094"}
	withIP := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "b-1"}, Status: corev1.PodStatus{PodIP: "10.1.2.3"}}
	noIP := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "b-1"}}
	if got, err := controlTarget(withIP, m); err != nil || got != "10.1.2.3:9094" {
		t.Errorf("pod with an IP: %q %v, want the pod IP and the registered port", got, err)
	}
	if got, err := controlTarget(noIP, m); err != nil || got != "kafka.example.com:9094" {
		t.Errorf("pod without an IP: %q %v, want the registered address", got, err)
	}
	if _, err := controlTarget(withIP, metadata.Member{Broker: metadata.Broker{NodeID: 3}, Pod: "b-1"}); err == nil || !strings.Contains(err.Error(), "KAFSCALE_CONTROL_ADDR") {
		t.Errorf("no control address: %v, want an error naming KAFSCALE_CONTROL_ADDR", err)
	}
	if _, err := controlTarget(withIP, metadata.Member{ControlAddr: "nonsense"}); err == nil {
		t.Error("a bad registered address was accepted")
	}
	if got, ok := memberOf([]metadata.Member{{Pod: "a"}, m}, "b-1"); !ok || got.NodeID != 3 {
		t.Errorf("memberOf = %+v %v", got, ok)
	}
	if _, ok := memberOf([]metadata.Member{m}, "other"); ok {
		t.Error("memberOf found a broker for a pod that has none")
	}
}

func TestScaleDownVictims(t *testing.T) {
	now := time.Now()
	pod := func(name string, age time.Duration, opts ...func(*corev1.Pod)) corev1.Pod {
		p := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(now.Add(-age))},
			Spec:       corev1.PodSpec{NodeName: "node"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
		for _, o := range opts {
			o(&p)
		}
		return p
	}
	marked := func(p *corev1.Pod) {
		p.Annotations = map[string]string{PodDeletionCostAnnotation: ScaleDownDeletionCost}
	}
	unscheduled := func(p *corev1.Pod) { p.Spec.NodeName = ""; p.Status.Phase = corev1.PodPending }
	notReady := func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }
	terminating := func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: now} }

	cases := []struct {
		name string
		pods []corev1.Pod
		n    int
		want string
	}{
		{"newest first", []corev1.Pod{pod("old", time.Hour), pod("new", time.Minute), pod("mid", 10*time.Minute)}, 1, "new"},
		{"two", []corev1.Pod{pod("old", time.Hour), pod("new", time.Minute), pod("mid", 10*time.Minute)}, 2, "new,mid"},
		{"marked before", []corev1.Pod{pod("old", time.Hour, marked), pod("new", time.Minute)}, 1, "old"},
		{"unscheduled before not ready", []corev1.Pod{pod("nr", time.Hour, notReady), pod("u", 2*time.Hour, unscheduled), pod("new", time.Minute)}, 2, "u,nr"},
		{"terminating never", []corev1.Pod{pod("t", time.Second, terminating), pod("a", time.Hour)}, 1, "a"},
		{"more than there are", []corev1.Pod{pod("a", time.Hour)}, 3, "a"},
		{"none", []corev1.Pod{pod("a", time.Hour)}, -1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var names []string
			for _, p := range scaleDownVictims(tc.pods, tc.n) {
				names = append(names, p.Name)
			}
			if got := strings.Join(names, ","); got != tc.want {
				t.Errorf("victims %q, want %q", got, tc.want)
			}
		})
	}
}
