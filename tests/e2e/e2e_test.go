// Package e2e is the end-to-end tier (`make e2e`): the chart's promise — install, upgrade
// with --reuse-values or -f, rollback, roll forward — proven on one kind cluster with real
// pods, against release A (the chart and images of the commit in ./release-a, built from
// that commit's sources) and release B (this checkout).
//
// `make e2e` prepares what the test needs and passes it in the environment:
//
//	E2E_CLUSTER      kind cluster to create (a cluster of that name left by an earlier run is
//	                 deleted first; deleted at the end unless E2E_KEEP=1)
//	E2E_RELEASE_A    directory with release A's images/ and chart/ (tests/e2e/release-images.sh)
//	E2E_IMAGES_B     release B's image archives (make images)
//	KIND_NODE_IMAGE, KIND_OFFLINE, KUBECTL, ETCD_VERSION, COREDNS_VERSION: as for kind/up.sh
//	E2E_BROKEN=1     the deliberately broken upgrade: B's brokers run an image that exits at
//	                 once; the upgrade step must fail with the diagnostics, not hang.
//
// Without them the test fails (it never skips): run it through `make e2e`.
package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	namespace = "kafscale"
	release   = "kafscale"
	// rollout bounds each wait for pods; generous: the machine may be busy. A pod that
	// crash-loops ends the wait at once.
	rollout = 20 * time.Minute
)

// components are the chart's and the operator's pods, each with how many run and whether its
// image is the release's operator image (etcd members run etcd with the operator's image in
// their restore init container).
var components = []struct {
	name  string
	count int
}{
	{"operator", 1}, {"proxy", 1}, {"console", 1}, {"etcd", 3}, {"broker", 3},
}

// rel is a release the test installs: its chart (packaged with its own version and with the
// commit as appVersion, so the chart's default image tags are that commit's images).
type rel struct {
	name  string // A or B
	tag   string // the images' commit tag
	chart string // packaged chart
}

type env struct {
	t     *recT
	quiet *k8s.KubectlOptions // for polls: no log line per call
	// flowing: the data flow's clients run (steps 2 to 6); a wait fails if one ends.
	flowing  bool
	repo     string
	work     string
	cluster  string
	kubectl  string
	kopts    *k8s.KubectlOptions
	a, b     rel
	values   string
	broken   bool
	steps    []string
	stepFrom time.Time
	kindLogs string // where the diagnostics exported kind's logs
}

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run this test with make e2e", name)
	}
	return v
}

func TestUpgradeRollbackOnKind(tt *testing.T) {
	e := setup(tt)
	t := e.t

	e.step("1 install release A (%s)", e.a.tag)
	helm.Install(t, e.helm(nil), e.a.chart, release)
	k8s.RunKubectl(t, e.kopts, "apply", "-f", filepath.Join(e.repo, "kind", "cluster-resources.yaml"))
	e.waitRelease(e.a)
	clusterUID := e.uid("kafscalecluster", "kafscale")
	topicUID := e.uid("kafscaletopic", "kafscale-helm-test")
	e.helmTest()
	e.history([]string{"deployed"}, e.a)

	e.step("2 start producers and a consumer group in the cluster")
	e.startFlow()
	e.flowing = true

	e.step("3 upgrade to release B (%s) with --reuse-values", e.b.tag)
	before := e.podUIDs()
	watch := e.watchBrokers()
	args := []string{"--reuse-values"}
	if e.broken {
		// A broker image whose entrypoint exits at once (the check binary without a
		// command): the operator rolls the brokers to it and they crash-loop.
		args = append(args, "--set", "operator.brokerImage.repository=kafscale/kafscale-check")
	}
	if out, err := helm.RunHelmCommandAndGetOutputE(t, e.helm(nil), "upgrade", append([]string{release, e.b.chart}, args...)...); err != nil {
		t.Fatalf("helm upgrade --reuse-values: %v\n%s", err, out)
	}
	e.waitRelease(e.b)
	e.replaced(before)
	watch.check(e, before, e.b)
	e.helmTest()
	e.history([]string{"superseded", "deployed"}, e.a, e.b)

	e.step("4 rollback to release A")
	before = e.podUIDs()
	watch = e.watchBrokers()
	helm.Rollback(t, e.helm(nil), release, "1")
	e.waitRelease(e.a)
	e.replaced(before)
	watch.check(e, before, e.a)
	if e.uid("kafscalecluster", "kafscale") != clusterUID || e.uid("kafscaletopic", "kafscale-helm-test") != topicUID {
		t.Fatal("the KafscaleCluster or the KafscaleTopic was replaced by the rollback")
	}
	for _, crd := range []string{"kafscaleclusters.kafscale.io", "kafscaletopics.kafscale.io"} {
		k8s.RunKubectl(t, e.kopts, "get", "crd", crd)
	}
	e.helmTest()
	e.history([]string{"superseded", "superseded", "deployed"}, e.a, e.b, e.a)

	e.step("5 roll forward to release B with -f values")
	before = e.podUIDs()
	watch = e.watchBrokers()
	helm.Upgrade(t, e.helm(nil), e.b.chart, release)
	e.waitRelease(e.b)
	e.replaced(before)
	watch.check(e, before, e.b)
	e.helmTest()
	e.history([]string{"superseded", "superseded", "superseded", "deployed"}, e.a, e.b, e.a, e.b)
	if e.uid("kafscalecluster", "kafscale") != clusterUID {
		t.Fatal("the KafscaleCluster was replaced")
	}

	e.step("6 stop the clients: every acknowledged record read")
	e.stopFlow()
	e.flowing = false

	e.step("7 uninstall, then reinstall under the same name")
	helm.Delete(t, e.helm(nil), release, true) // true: no --keep-history, as a plain helm uninstall
	e.waitGone()
	if e.uid("kafscalecluster", "kafscale") != clusterUID || e.uid("kafscaletopic", "kafscale-helm-test") != topicUID {
		t.Fatal("helm uninstall deleted or replaced the KafscaleCluster or a KafscaleTopic")
	}
	for _, crd := range []string{"kafscaleclusters.kafscale.io", "kafscaletopics.kafscale.io"} {
		k8s.RunKubectl(t, e.kopts, "get", "crd", crd)
	}
	helm.Install(t, e.helm(nil), e.b.chart, release)
	e.waitRelease(e.b)
	if e.uid("kafscalecluster", "kafscale") != clusterUID || e.uid("kafscaletopic", "kafscale-helm-test") != topicUID {
		t.Fatal("the reinstall replaced the KafscaleCluster or a KafscaleTopic instead of adopting them")
	}
	e.history([]string{"deployed"}, e.b)
	e.helmTest()
	// The record the last helm test of the first installation produced (revision 4) is
	// served by the reinstalled release.
	e.findRecord(e.b, "kafscale-helm-test kafscale revision 4")

	e.step("8 ct install")
	e.t.Logf("ct install passed with %s", strings.Join(e.ctInstall(), ", "))
	e.step("done")
}

func setup(t *testing.T) *env {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t:       &recT{T: t},
		repo:    repo,
		work:    t.TempDir(),
		cluster: need(t, "E2E_CLUSTER"),
		kubectl: need(t, "KUBECTL"),
		values:  filepath.Join(repo, "tests", "e2e", "values.yaml"),
		broken:  os.Getenv("E2E_BROKEN") == "1",
	}
	if exec.Command("docker", "info").Run() != nil {
		// As kind/up.sh: podman where no docker daemon answers.
		t.Setenv("KIND_EXPERIMENTAL_PROVIDER", "podman")
	}
	e.kopts = k8s.NewKubectlOptions("kind-"+e.cluster, "", namespace)
	e.kopts.Logger = logger.Default
	e.quiet = k8s.NewKubectlOptions("kind-"+e.cluster, "", namespace)
	e.quiet.Logger = logger.Discard
	dirA, imagesB := need(t, "E2E_RELEASE_A"), need(t, "E2E_IMAGES_B")
	e.a = rel{name: "A", tag: imageTag(t, filepath.Join(dirA, "images"))}
	e.b = rel{name: "B", tag: imageTag(t, imagesB)}
	e.a.chart = e.pack(filepath.Join(dirA, "chart"), "a", e.a.tag)
	e.b.chart = e.pack(filepath.Join(repo, "charts", "kafscale"), "b", e.b.tag)

	e.step("0 kind cluster %s, images of B, S3 server", e.cluster)
	t.Cleanup(e.teardown)
	if out, _ := exec.Command("kind", "get", "clusters").Output(); slices.Contains(strings.Fields(string(out)), e.cluster) {
		// Left by a killed run (E2E_KEEP=1, an interrupted session, a reboot): its node may
		// be stopped, and its state is not this run's. The scenario starts on a new cluster.
		t.Logf("a kind cluster %s is left from an earlier run: deleting it", e.cluster)
		e.run(filepath.Join(repo, "kind", "down.sh"), "KIND_CLUSTER="+e.cluster)
	}
	e.run(filepath.Join(repo, "kind", "up.sh"), "KIND_CLUSTER="+e.cluster, "IMAGES_DIR="+imagesB, "KIND_UP_UNTIL=s3",
		"KIND_NAMESPACE="+namespace, "KIND_KAFKA_PORT=29092", "KIND_CONSOLE_PORT=28080")
	e.step("0 images of A")
	archives, _ := filepath.Glob(filepath.Join(dirA, "images", "kafscale-*.tar"))
	if len(archives) < 4 {
		e.t.Fatalf("release A has %d product image archives in %s, want operator, broker, proxy, console, check", len(archives), dirA)
	}
	for _, a := range archives {
		e.run("kind", "load", "image-archive", "--name", e.cluster, a)
	}
	return e
}

// imageTag reads IMAGE_TAG from an images directory's images.env.
func imageTag(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "images.env"))
	if err != nil {
		t.Fatalf("%v: build the images first (make e2e does)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "IMAGE_TAG="); ok {
			return v
		}
	}
	t.Fatalf("no IMAGE_TAG in %s/images.env", dir)
	return ""
}

// pack packages a chart as version 0.0.0-e2e.<which>.<tag> with appVersion tag, so every
// image the chart names by default is that commit's, and helm history tells A from B.
func (e *env) pack(chart, which, tag string) string {
	e.t.Helper()
	out := filepath.Join(e.work, which)
	cmd := exec.Command("helm", "package", chart, "--destination", out, "--version", "0.0.0-e2e."+which+"."+strings.ReplaceAll(tag, "-", "."), "--app-version", tag)
	if b, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("helm package %s: %v\n%s", chart, err, b)
	}
	tgz, _ := filepath.Glob(filepath.Join(out, "*.tgz"))
	if len(tgz) != 1 {
		e.t.Fatalf("helm package %s made %v", chart, tgz)
	}
	return tgz[0]
}

func (e *env) helm(set map[string]string) *helm.Options {
	return &helm.Options{
		KubectlOptions: e.kopts,
		ValuesFiles:    []string{e.values},
		SetValues:      set,
		ExtraArgs:      map[string][]string{"install": {"--create-namespace"}},
		Logger:         logger.Default,
	}
}

// step logs the time the previous step took and starts the next.
func (e *env) step(format string, args ...any) {
	now := time.Now()
	if len(e.steps) > 0 {
		e.t.Logf("STEP %s: %s", e.steps[len(e.steps)-1], now.Sub(e.stepFrom).Round(time.Second))
	}
	name := fmt.Sprintf(format, args...)
	e.steps = append(e.steps, name)
	e.stepFrom = now
	e.t.Logf("STEP %s: start %s", name, now.UTC().Format("15:04:05"))
}

func (e *env) run(name string, args ...string) {
	e.t.Helper()
	var envs []string
	for len(args) > 0 && strings.Contains(args[0], "=") && !strings.HasPrefix(args[0], "-") {
		envs, args = append(envs, args[0]), args[1:]
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), envs...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
}

func (e *env) uid(kind, name string) string {
	e.t.Helper()
	out, err := k8s.RunKubectlAndGetOutputE(e.t, e.kopts, "get", kind, name, "-o", "jsonpath={.metadata.uid}")
	if err != nil || out == "" {
		e.t.Fatalf("%s %s: %v %s", kind, name, err, out)
	}
	return out
}

func (e *env) pods() []corev1.Pod {
	e.t.Helper()
	pods, err := k8s.ListPodsE(e.t, e.quiet, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component in (operator,proxy,console,etcd,broker)"})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	return pods
}

func (e *env) podUIDs() map[string]string {
	out := map[string]string{}
	for _, p := range e.pods() {
		out[string(p.UID)] = p.Name
	}
	return out
}

// replaced checks that no pod of before is still there: every operator, proxy, console,
// etcd and broker pod was replaced.
func (e *env) replaced(before map[string]string) {
	e.t.Helper()
	for _, p := range e.pods() {
		if name, ok := before[string(p.UID)]; ok {
			e.t.Fatalf("pod %s was not replaced", name)
		}
	}
}

// waitRelease waits until every component runs its count of ready pods, all on r's images,
// with no other pod of theirs left, and the KafscaleCluster and its topics are Ready. It
// fails at once when a pod of r crash-loops. Then no pod may restart for 30 s (stable
// restart counts).
func (e *env) waitRelease(r rel) {
	e.t.Helper()
	deadline := time.Now().Add(rollout)
	var last string
	for {
		if e.flowing {
			e.flowAlive()
		}
		state, problem := e.rolledOut(r)
		if problem != "" {
			e.t.Fatalf("release %s: %s", r.name, problem)
		}
		if state == "" {
			break
		}
		if state != last {
			e.t.Logf("waiting for release %s: %s", r.name, state)
			last = state
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("release %s not rolled out within %s: %s", r.name, rollout, state)
		}
		time.Sleep(5 * time.Second)
	}
	restarts := e.restarts()
	time.Sleep(30 * time.Second)
	if now := e.restarts(); now != restarts {
		e.t.Fatalf("release %s: pods restarted after the rollout:\nbefore %s\nafter  %s", r.name, restarts, now)
	}
}

// waitGone waits until the chart's own objects are gone after helm uninstall.
func (e *env) waitGone() {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		out, err := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "get", "deployments,services,serviceaccounts,configmaps,secrets,roles,rolebindings,poddisruptionbudgets",
			"-l", "app.kubernetes.io/managed-by=Helm,app.kubernetes.io/instance="+release, "-o", "name")
		if err == nil && strings.TrimSpace(out) == "" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("objects of the chart left 5 minutes after helm uninstall (err %v):\n%s", err, out)
		}
		time.Sleep(5 * time.Second)
	}
}

// findRecord runs kafscale-check consume of release r in a pod: the value must be in the
// topic kafscale-helm-test.
func (e *env) findRecord(r rel, value string) {
	e.t.Helper()
	pod := "e2e-find-record"
	_, _ = k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "delete", "pod", pod, "--ignore-not-found", "--wait")
	k8s.RunKubectl(e.t, e.kopts, "run", pod, "--image=ghcr.io/kafscale/kafscale-check:"+r.tag, "--image-pull-policy=Never", "--restart=Never", "--",
		"consume", "-bootstrap", "kafscale-proxy:9092", "-topic", "kafscale-helm-test", "-value", value, "-timeout", "120s")
	deadline := time.Now().Add(5 * time.Minute)
	for {
		phase, _ := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "get", "pod", pod, "-o", "jsonpath={.status.phase}")
		if phase == "Succeeded" || phase == "Failed" || time.Now().After(deadline) {
			logs, _ := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "logs", pod)
			if phase != "Succeeded" {
				e.t.Fatalf("record %q not found (pod %s: %s):\n%s", value, pod, phase, logs)
			}
			e.t.Logf("record %q found: %s", value, logs)
			return
		}
		time.Sleep(3 * time.Second)
	}
}

func (e *env) clusterReady() bool {
	out, _ := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "get", "kafscalecluster", "kafscale", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
	return out == "True"
}

// rolledOut says what is still missing ("" when nothing), or a problem that waiting cannot fix.
func (e *env) rolledOut(r rel) (state, problem string) {
	byComponent := map[string][]corev1.Pod{}
	for _, p := range e.pods() {
		c := p.Labels["app.kubernetes.io/component"]
		byComponent[c] = append(byComponent[c], p)
	}
	var missing []string
	if !e.clusterReady() {
		missing = append(missing, "KafscaleCluster kafscale not Ready")
	}
	topics, _ := k8s.RunKubectlAndGetOutputE(e.t, e.quiet, "get", "kafscaletopic", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
	for _, f := range strings.Fields(topics) {
		if !strings.HasSuffix(f, "=True") {
			name, _, _ := strings.Cut(f, "=")
			missing = append(missing, "KafscaleTopic "+name+" not Ready")
		}
	}
	for _, c := range components {
		ready := 0
		for _, p := range byComponent[c.name] {
			images := podImages(p)
			ofRelease := true
			for _, img := range images {
				if strings.Contains(img, "/kafscale-") && !strings.HasSuffix(img, ":"+r.tag) {
					ofRelease = false
				}
			}
			if c.name == "etcd" && !containsSuffix(images, "kafscale-operator:"+r.tag) {
				ofRelease = false
			}
			for _, s := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
				if ofRelease && s.RestartCount >= 2 && s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" {
					return "", fmt.Sprintf("pod %s (%s) crash-loops: container %s restarted %d times, last: %s", p.Name, strings.Join(images, ","), s.Name, s.RestartCount, terminated(s))
				}
			}
			if ofRelease && p.DeletionTimestamp == nil && podReady(p) {
				ready++
			}
		}
		if ready != c.count || len(byComponent[c.name]) != c.count {
			missing = append(missing, fmt.Sprintf("%s %d/%d ready on %s (%d pods)", c.name, ready, c.count, r.tag, len(byComponent[c.name])))
		}
	}
	return strings.Join(missing, ", "), ""
}

func podImages(p corev1.Pod) []string {
	var out []string
	for _, c := range append(append([]corev1.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...) {
		out = append(out, c.Image)
	}
	return out
}

func containsSuffix(list []string, suffix string) bool {
	for _, s := range list {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func terminated(s corev1.ContainerStatus) string {
	if t := s.LastTerminationState.Terminated; t != nil {
		return fmt.Sprintf("exit %d %s %s", t.ExitCode, t.Reason, strings.TrimSpace(t.Message))
	}
	return "unknown"
}

// restarts is every pod's restart count, as one comparable string.
func (e *env) restarts() string {
	var out []string
	for _, p := range e.pods() {
		n := int32(0)
		for _, s := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			n += s.RestartCount
		}
		out = append(out, fmt.Sprintf("%s=%d", p.Name, n))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (e *env) helmTest() {
	e.t.Helper()
	out, err := helm.RunHelmCommandAndGetOutputE(e.t, e.helm(nil), "test", release, "--timeout", "10m", "--logs")
	if err != nil {
		e.t.Fatalf("helm test: %v\n%s", err, out)
	}
}

// history checks helm history's statuses and, per revision, the release's chart.
func (e *env) history(statuses []string, rels ...rel) {
	e.t.Helper()
	out, err := helm.RunHelmCommandAndGetOutputE(e.t, e.helm(nil), "history", release, "-o", "json")
	if err != nil {
		e.t.Fatalf("helm history: %v\n%s", err, out)
	}
	var got []string
	for _, line := range strings.Split(strings.ReplaceAll(out, "},{", "}\n{"), "\n") {
		st := field(line, "status")
		ch := field(line, "chart")
		if st != "" {
			got = append(got, st+" "+ch)
		}
	}
	var want []string
	for i, s := range statuses {
		want = append(want, s+" kafscale-0.0.0-e2e."+strings.ToLower(rels[i].name)+"."+strings.ReplaceAll(rels[i].tag, "-", "."))
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		e.t.Fatalf("helm history:\n got  %s\n want %s\n%s", strings.Join(got, "; "), strings.Join(want, "; "), out)
	}
}

func field(obj, name string) string {
	_, rest, ok := strings.Cut(obj, `"`+name+`":"`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// teardown prints the diagnostics when the test failed, then deletes the cluster unless
// E2E_KEEP=1.
func (e *env) teardown() {
	if len(e.steps) > 0 {
		e.t.Logf("STEP %s: %s", e.steps[len(e.steps)-1], time.Since(e.stepFrom).Round(time.Second))
	}
	if e.t.Failed() {
		e.diagnostics()
	}
	if os.Getenv("E2E_KEEP") == "1" {
		e.t.Logf("E2E_KEEP=1: cluster %s kept (make kind-down KIND_CLUSTER=%s)", e.cluster, e.cluster)
		return
	}
	cmd := exec.Command(filepath.Join(e.repo, "kind", "down.sh"))
	cmd.Env = append(os.Environ(), "KIND_CLUSTER="+e.cluster)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	_ = cmd.Run()
	if e.t.Failed() {
		// Last, after pages of diagnostics: a log cut to its tail still says what failed.
		step := "setup"
		if len(e.steps) > 0 {
			step = e.steps[len(e.steps)-1]
		}
		fmt.Printf("\ne2e: FAILED in step %q after %s: %s\n(diagnostics above; kind's logs in %s)\n",
			step, time.Since(e.stepFrom).Round(time.Second), e.t.firstFailure(), e.kindLogs)
	}
}

// recT is the test's *testing.T keeping the first failure's message, which the teardown
// repeats at the very end.
type recT struct {
	*testing.T
	mu    sync.Mutex
	first string
}

func (r *recT) note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first == "" {
		r.first = msg
	}
}

func (r *recT) firstFailure() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first == "" {
		return "(no message)"
	}
	const max = 1500
	if len(r.first) > max {
		return r.first[:max] + " …"
	}
	return r.first
}

func (r *recT) Errorf(format string, args ...any) {
	r.T.Helper()
	r.note(fmt.Sprintf(format, args...))
	r.T.Errorf(format, args...)
}

func (r *recT) Error(args ...any) {
	r.T.Helper()
	r.note(fmt.Sprint(args...))
	r.T.Error(args...)
}

func (r *recT) Fatalf(format string, args ...any) {
	r.T.Helper()
	r.note(fmt.Sprintf(format, args...))
	r.T.Fatalf(format, args...)
}

func (r *recT) Fatal(args ...any) {
	r.T.Helper()
	r.note(fmt.Sprint(args...))
	r.T.Fatal(args...)
}

// diagnostics prints what a failed step needs to be understood, and exports kind's logs.
func (e *env) diagnostics() {
	show := func(title, name string, args ...string) {
		out, err := exec.Command(name, args...).CombinedOutput()
		fmt.Printf("\n===== %s (%s %s; err %v)\n%s", title, name, strings.Join(args, " "), err, out)
	}
	engine := "podman"
	if os.Getenv("KIND_EXPERIMENTAL_PROVIDER") == "" {
		engine = "docker"
	}
	// The node container first: when it is not running, nothing below can answer.
	show("kind node container", engine, "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+e.cluster)
	show("kind node's own log", engine, "logs", "--tail", "40", e.cluster+"-control-plane")
	ctx := "kind-" + e.cluster
	kc := func(args ...string) []string { return append([]string{"--context", ctx, "-n", namespace}, args...) }
	show("pods", e.kubectl, kc("get", "pods", "-o", "wide")...)
	show("events", e.kubectl, kc("get", "events", "--sort-by=.lastTimestamp")...)
	show("KafscaleCluster", e.kubectl, kc("get", "kafscalecluster", "-o", "yaml")...)
	show("KafscaleTopics", e.kubectl, kc("get", "kafscaletopic")...)
	show("helm history", "helm", "history", release, "--kube-context", ctx, "-n", namespace)
	show("helm values", "helm", "get", "values", release, "--all", "--kube-context", ctx, "-n", namespace)
	out, _ := exec.Command(e.kubectl, kc("get", "pods", "-l", "app.kubernetes.io/component in (operator,broker,proxy,console,etcd)", "-o", "name")...).Output()
	for _, pod := range strings.Fields(string(out)) {
		show("logs of "+pod, e.kubectl, kc("logs", pod, "--all-containers", "--tail=200")...)
		show("previous logs of "+pod, e.kubectl, kc("logs", pod, "--all-containers", "--previous", "--tail=100")...)
	}
	for _, pod := range flowPods {
		show("logs of the data flow's "+pod, e.kubectl, kc("logs", pod, "--tail=60")...)
	}
	e.kindLogs = filepath.Join(e.repo, ".e2e", "kind-logs-"+time.Now().UTC().Format("20060102-150405"))
	show("kind export logs", "kind", "export", "logs", e.kindLogs, "--name", e.cluster)
}
