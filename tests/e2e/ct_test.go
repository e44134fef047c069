package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
)

// ctSkipMark starts the first line of a values file in charts/kafscale/ci/ that cannot be
// installed on a bare kind cluster; the rest of the line and the next say why. ct lint uses
// every file; ct install here only the others.
const ctSkipMark = "# ct install: skipped on kind"

// ctInstall runs `ct install` (install with each installable ci values file, wait, helm
// test, uninstall) on this cluster, after uninstalling the test's own release so that one
// operator at a time reconciles the KafscaleCluster. Each ct release, named by ct, adopts
// the same KafscaleCluster (clusterName kafscale) in the namespace, whose topic
// kafscale-helm-test its helm test uses. The chart is a copy with B's commit as appVersion
// (so its default image tags are B's images, loaded into the cluster).
func (e *env) ctInstall() []string {
	e.t.Helper()
	helm.Delete(e.t, e.helm(nil), release, true)
	e.waitGone()
	// The Prometheus Operator's CRDs the monitoring values need (the pinned copies make
	// tools installs for the chart tests).
	for _, crd := range []string{"servicemonitors", "prometheusrules"} {
		k8s.RunKubectl(e.t, e.kopts, "apply", "--server-side", "-f", filepath.Join(e.repo, "bin", "prometheus-operator-crds", "monitoring.coreos.com_"+crd+".yaml"))
	}
	dir := filepath.Join(e.work, "ct")
	chart := filepath.Join(dir, "kafscale")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-r", filepath.Join(e.repo, "charts", "kafscale"), dir+"/").CombinedOutput(); err != nil {
		e.t.Fatalf("copy the chart: %v %s", err, out)
	}
	meta, err := os.ReadFile(filepath.Join(chart, "Chart.yaml"))
	if err != nil {
		e.t.Fatal(err)
	}
	meta = regexp.MustCompile(`(?m)^appVersion:.*$`).ReplaceAll(meta, []byte(`appVersion: "`+e.b.tag+`"`))
	if err := os.WriteFile(filepath.Join(chart, "Chart.yaml"), meta, 0o644); err != nil {
		e.t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	var installed []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			e.t.Fatal(err)
		}
		if strings.HasPrefix(string(b), ctSkipMark) {
			e.t.Logf("ct install: %s skipped: %s", filepath.Base(f), strings.SplitN(string(b), "\n", 2)[0])
			if err := os.Remove(f); err != nil {
				e.t.Fatal(err)
			}
			continue
		}
		installed = append(installed, filepath.Base(f))
	}
	if len(installed) == 0 {
		e.t.Fatal("ct install: no installable values file in charts/kafscale/ci")
	}
	kubeconfig := filepath.Join(e.work, "kubeconfig")
	kc, err := exec.Command("kind", "get", "kubeconfig", "--name", e.cluster).Output()
	if err != nil {
		e.t.Fatalf("kind get kubeconfig: %v", err)
	}
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		e.t.Fatal(err)
	}
	// Only what kind needs: the managed etcd's image (as tests/e2e/values.yaml), images
	// never pulled (they are loaded), which also leaves the brokers' pod template as it is,
	// and crds.enabled=false: the CRDs are there, kept by the uninstall and owned by the
	// test's release name (meta.helm.sh/release-name), and helm cannot adopt them into ct's
	// releases, whose names ct always suffixes at random ("installed by other means", as
	// the value's documentation says).
	set := "--set=operator.extraEnv[0].name=KAFSCALE_OPERATOR_ETCD_IMAGE --set=operator.extraEnv[0].value=ghcr.io/kafscale/etcd:" + need(e.t, "ETCD_VERSION") +
		" --set=operator.brokerImage.pullPolicy=Never --set=crds.enabled=false"
	cmd := exec.Command(filepath.Join(e.repo, "bin", "ct"), "install", "--config", filepath.Join(e.repo, "ct.yaml"),
		"--chart-dirs", dir, "--charts", chart, "--namespace", namespace, "--release-label", "app.kubernetes.io/instance",
		"--helm-extra-set-args", set)
	cmd.Dir = e.repo
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+filepath.Dir(e.kubectl)+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("ct install with %s: %v", strings.Join(installed, ", "), err)
	}
	return installed
}
