package e2e

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gruntwork-io/terratest/modules/k8s"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// brokerWatch follows the broker pods while a release rolls, every 2 seconds: how many are
// ready and not terminating (the operator's Deployment rolls with maxUnavailable 0 and
// maxSurge 1, so never fewer than the 3 replicas), how many terminate at the same time
// (each is drained by the operator while its preStop hook holds SIGTERM back; B's broker
// pods become Ready only once no other broker drains, through their readiness gate, which
// keeps that to one), and which pods terminated. A poll can miss a change shorter than its
// period; the drain events are checked from the API, not polled.
type brokerWatch struct {
	stop, done     chan struct{}
	mu             sync.Mutex
	minReady       int
	maxTerminating int
	maxPods        int
	terminated     map[string]bool
	polls          int
}

func (e *env) watchBrokers() *brokerWatch {
	w := &brokerWatch{stop: make(chan struct{}), done: make(chan struct{}), minReady: 1 << 30, terminated: map[string]bool{}}
	go func() {
		defer close(w.done)
		for {
			pods, err := k8s.ListPodsE(e.t, e.quiet, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=broker"})
			if err == nil {
				ready, terminating := 0, 0
				w.mu.Lock()
				for _, p := range pods {
					switch {
					case p.DeletionTimestamp != nil:
						terminating++
						w.terminated[p.Name] = true
					case podReady(p):
						ready++
					}
				}
				w.polls++
				w.minReady = min(w.minReady, ready)
				w.maxTerminating = max(w.maxTerminating, terminating)
				w.maxPods = max(w.maxPods, len(pods))
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return w
}

// check stops the watch and checks the roll: never fewer than 3 ready brokers, and, when
// release r's operator rolled them and is B (this checkout, whose broker pods wait for
// their drain turn), never two brokers terminating at once and
// every broker pod of before drained by the operator (a Drained event on it). Release A's
// operator is older code: its roll is logged, not held to B's promise.
func (w *brokerWatch) check(e *env, before map[string]string, r rel) {
	e.t.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	old := brokerPodsOf(before)
	e.t.Logf("broker roll by release %s's operator: %d polls, ready brokers never fewer than %d, at most %d terminating at once, at most %d broker pods; terminating seen: %d",
		r.name, w.polls, w.minReady, w.maxTerminating, w.maxPods, len(w.terminated))
	if w.minReady < 3 {
		e.t.Fatalf("broker roll: only %d brokers were ready at one time, want never fewer than 3 (maxUnavailable 0)", w.minReady)
	}
	drained := e.podEvents("Drained")
	failed := e.podEvents("DrainFailed")
	var problems []string
	for _, p := range old {
		if failed[p] {
			e.t.Logf("broker pod %s: DrainFailed: %s", p, e.eventMessages(p, "DrainFailed"))
		}
		if !drained[p] {
			problems = append(problems, fmt.Sprintf("broker pod %s went without a Drained event from the operator", p))
		}
	}
	if w.maxTerminating > 1 {
		problems = append(problems, fmt.Sprintf("%d broker pods were terminating at once, want one at a time", w.maxTerminating))
	}
	if len(problems) > 0 && r.name == "A" {
		e.t.Logf("broker roll by release A's operator (older code, not checked):\n%s", strings.Join(problems, "\n"))
		return
	}
	if len(problems) > 0 {
		e.t.Fatalf("broker roll:\n%s", strings.Join(problems, "\n"))
	}
	e.t.Logf("broker roll: one at a time, %d broker pods each drained by the operator: %s", len(old), strings.Join(old, " "))
	if r.name == "B" {
		e.bRollSettings()
	}
}

// bRollSettings checks that B's operator rolls with its readiness gate and no
// minReadySeconds, also on the Deployment release A's operator made with a 65 s one.
func (e *env) bRollSettings() {
	e.t.Helper()
	out, err := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "get", "deployment", "kafscale-broker",
		"-o", `jsonpath={.spec.minReadySeconds}/{.spec.template.spec.readinessGates[*].conditionType}`)
	if err != nil {
		e.t.Fatalf("broker Deployment: %v %s", err, out)
	}
	// An unset minReadySeconds (0, omitted) prints as nothing.
	if out != "/kafscale.io/drain-turn" && out != "0/kafscale.io/drain-turn" {
		e.t.Fatalf("broker Deployment after B's roll: minReadySeconds/readiness gates %q, want 0 and kafscale.io/drain-turn", out)
	}
}

// brokerPodsOf names the broker pods (of the operator's Deployment kafscale-broker) in a
// podUIDs map, sorted.
func brokerPodsOf(before map[string]string) []string {
	var out []string
	for _, name := range before {
		if strings.HasPrefix(name, "kafscale-broker-") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// podEvents is the set of pods with an event of the reason.
func (e *env) podEvents(reason string) map[string]bool {
	e.t.Helper()
	out, err := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "get", "events", "--field-selector", "reason="+reason+",involvedObject.kind=Pod",
		"-o", `jsonpath={range .items[*]}{.involvedObject.name}{"\n"}{end}`)
	if err != nil {
		e.t.Fatalf("events %s: %v %s", reason, err, out)
	}
	set := map[string]bool{}
	for _, n := range strings.Fields(out) {
		set[n] = true
	}
	return set
}

func (e *env) eventMessages(pod, reason string) string {
	out, _ := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "get", "events", "--field-selector", "reason="+reason+",involvedObject.name="+pod,
		"-o", `jsonpath={range .items[*]}{.message}{"; "}{end}`)
	return out
}
