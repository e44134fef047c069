package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/kafscale/kafscale/internal/flowresult"
)

// The data flow of steps 2 and 6 (flow.yaml): two idempotent producers and a consumer group
// member in pods, running through every upgrade, rollback and roll forward.

var (
	flowProducers = []string{"p0", "p1"}
	flowPods      = []string{"e2e-producer-p0", "e2e-producer-p1", "e2e-consumer"}
)

// startFlow creates the topic and the clients with release B's check image and waits until
// the consumer has read a record.
func (e *env) startFlow() {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.repo, "tests", "e2e", "flow.yaml"))
	if err != nil {
		e.t.Fatal(err)
	}
	manifest := strings.ReplaceAll(string(b), "image: IMAGE", "image: ghcr.io/kafscale/kafscale-check:"+e.b.tag)
	k8s.KubectlApplyFromString(e.t, e.kopts, manifest)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		e.flowAlive()
		logs, _ := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "logs", "e2e-consumer")
		if strings.Contains(logs, "first record:") {
			e.t.Logf("data flowing: %s", firstLine(logs, "first record:"))
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the consumer read no record within 5 minutes:\n%s", logs)
		}
		time.Sleep(5 * time.Second)
	}
}

func firstLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, prefix) {
			return l
		}
	}
	return ""
}

// flowAlive fails when a client pod ended before it was told to stop.
func (e *env) flowAlive() {
	e.t.Helper()
	for _, pod := range flowPods {
		phase, _ := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "get", "pod", pod, "-o", "jsonpath={.status.phase}")
		if phase == "Succeeded" || phase == "Failed" {
			logs, _ := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "logs", pod, "--tail=50")
			e.t.Fatalf("client pod %s ended (%s) before it was stopped:\n%s", pod, phase, logs)
		}
	}
}

// stopFlow tells the producers to stop, waits for their results, then the consumer (which
// reads to the end offsets it sees once told), and checks: every acknowledged record read,
// exactly once per offset, in order per partition, committed offsets never backwards, lag 0.
func (e *env) stopFlow() {
	e.t.Helper()
	k8s.RunKubectl(e.t, e.kopts, "patch", "configmap", "e2e-flow-control", "--type=merge", "-p", `{"data":{"producers":"stop"}}`)
	produced := map[string]flowresult.Producer{}
	for _, id := range flowProducers {
		var r flowresult.Producer
		e.flowResult("e2e-producer-"+id, &r)
		produced[id] = r
	}
	k8s.RunKubectl(e.t, e.kopts, "patch", "configmap", "e2e-flow-control", "--type=merge", "-p", `{"data":{"consumers":"stop"}}`)
	var c flowresult.Consumer
	e.flowResult("e2e-consumer", &c)

	var problems []string
	acked := 0
	for _, id := range flowProducers {
		p := produced[id]
		mine := 0
		problems = append(problems, prefixed("producer "+id+": failed: ", p.Failed)...)
		problems = append(problems, prefixed("producer "+id+": ", p.Disorder)...)
		for part := int32(0); part < 3; part++ {
			n := count(p.Acked[part])
			acked += n
			mine += n
			if n == 0 {
				problems = append(problems, fmt.Sprintf("producer %s: no record acknowledged in partition %d", id, part))
			}
			if missing := minus(p.Acked[part], c.Read[part][id]); len(missing) > 0 {
				problems = append(problems, fmt.Sprintf("partition %d: %d acknowledged records of %s never read, first %v", part, len(missing), id, missing[:min(5, len(missing))]))
			}
		}
		e.t.Logf("producer %s: sent %d, acknowledged %d (numbers per partition %v)", id, p.Sent, mine, p.Acked)
	}
	problems = append(problems, c.Violations...)
	for part := int32(0); part < 3; part++ {
		if c.Committed[part] != c.End[part] {
			problems = append(problems, fmt.Sprintf("partition %d: committed offset %d, end offset %d (lag %d)", part, c.Committed[part], c.End[part], c.End[part]-c.Committed[part]))
		}
	}
	e.t.Logf("consumer: %d records read (%d redelivered after group rebalances), committed %v, end %v", c.Records, c.Redelivered, c.Committed, c.End)
	if len(problems) > 0 {
		e.t.Fatalf("the data flow through the upgrades lost, duplicated or reordered records:\n%s", strings.Join(problems, "\n"))
	}
	e.t.Logf("every one of %d acknowledged records read once, in order; committed offsets never went back; lag 0", acked)
	_, _ = k8s.RunKubectlAndGetOutputE(e.t, e.kopts, "delete", "pod", "e2e-producer-p0", "e2e-producer-p1", "e2e-consumer", "--wait")
}

// flowResult waits for a client pod to succeed and decodes its RESULT line.
func (e *env) flowResult(pod string, v any) {
	e.t.Helper()
	deadline := time.Now().Add(8 * time.Minute)
	for {
		phase, _ := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "get", "pod", pod, "-o", "jsonpath={.status.phase}")
		if phase == "Succeeded" || phase == "Failed" || time.Now().After(deadline) {
			logs, _ := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "logs", pod)
			if phase != "Succeeded" {
				e.t.Fatalf("client pod %s did not finish after it was stopped (%s):\n%s", pod, phase, tail(logs, 60))
			}
			if err := flowresult.Find(logs, v); err != nil {
				e.t.Fatalf("client pod %s: %v:\n%s", pod, err, tail(logs, 60))
			}
			e.t.Logf("%s:\n%s", pod, tail(logs, 12))
			return
		}
		time.Sleep(5 * time.Second)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func prefixed(prefix string, xs []string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, prefix+x)
	}
	return out
}

func count(rs [][2]int) int {
	n := 0
	for _, r := range rs {
		n += r[1] - r[0] + 1
	}
	return n
}

// minus lists the numbers in a but not in b (both as ranges).
func minus(a, b [][2]int) []int {
	in := map[int]bool{}
	for _, r := range b {
		for x := r[0]; x <= r[1]; x++ {
			in[x] = true
		}
	}
	var out []int
	for _, r := range a {
		for x := r[0]; x <= r[1]; x++ {
			if !in[x] {
				out = append(out, x)
			}
		}
	}
	sort.Ints(out)
	return out
}
