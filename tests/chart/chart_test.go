// Package chart tests the Helm chart charts/kafscale: rendered with the helm CLI through
// terratest's helm module and asserted on typed Kubernetes and Prometheus Operator objects
// (render_test.go, failures_test.go, docs_test.go), accepted by a real kube-apiserver in a
// server-side dry run, and installed, upgraded, rolled back and uninstalled against it
// (apiserver_test.go).
package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kafscale/kafscale/tests/testenv"
)

const (
	release   = "ks"
	namespace = "streaming"
	// fullname is <release>-<chart>; component objects are <fullname>-<component>.
	fullname = release + "-kafscale"
)

// repoPath returns a path inside the repository.
func repoPath(t testing.TB, rel ...string) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(append([]string{root}, rel...)...)
}

func chartDir(t testing.TB) string { return repoPath(t, "charts", "kafscale") }

// requireHelm fails the test, naming `make tools`, when the pinned helm is not on PATH.
func requireHelm(t testing.TB) {
	t.Helper()
	helmPath := testenv.Binary(t, "helm")
	if p, err := exec.LookPath("helm"); err != nil || p != helmPath {
		// Put ./bin first so terratest (which runs `helm` from PATH) uses the pinned one.
		t.Setenv("PATH", filepath.Dir(helmPath)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
}

// values is one rendering case: --set values, --set-string values and values files.
type values struct {
	set       map[string]string
	setString map[string]string
	setJSON   map[string]string
	files     []string
}

func (v values) options(ns string) *helm.Options {
	return &helm.Options{
		SetValues:      v.set,
		SetStrValues:   v.setString,
		SetJsonValues:  v.setJSON,
		ValuesFiles:    v.files,
		KubectlOptions: k8s.NewKubectlOptions("", "", ns),
		Logger:         logger.Discard,
	}
}

// renderE renders the whole chart (test hooks included) into the objects it makes.
func renderE(t testing.TB, v values, extraArgs ...string) (manifest, error) {
	t.Helper()
	requireHelm(t)
	out, err := helm.RenderTemplateE(t, v.options(namespace), chartDir(t), release, nil, extraArgs...)
	if err != nil {
		return nil, err
	}
	return parseManifest(t, out), nil
}

func render(t testing.TB, v values, extraArgs ...string) manifest {
	t.Helper()
	m, err := renderE(t, v, extraArgs...)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return m
}

// manifest is a rendered release: "Kind/name" → that object's YAML document.
type manifest map[string]string

func parseManifest(t testing.TB, out string) manifest {
	t.Helper()
	m := manifest{}
	for _, doc := range strings.Split(out, "\n---") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("rendered document is not YAML: %v\n%s", err, doc)
		}
		if len(u.Object) == 0 {
			continue
		}
		key := u.GetKind() + "/" + u.GetName()
		if _, dup := m[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		m[key] = doc
	}
	return m
}

func (m manifest) keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (m manifest) has(kind, name string) bool {
	_, ok := m[kind+"/"+name]
	return ok
}

// objects returns every rendered object as unstructured.
func (m manifest) objects(t testing.TB) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, k := range m.keys() {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(m[k]), &u.Object); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
	}
	return objs
}

// get unmarshals one rendered object into its typed Go struct with terratest.
func get[T any](t testing.TB, m manifest, kind, name string) *T {
	t.Helper()
	doc, ok := m[kind+"/"+name]
	if !ok {
		t.Fatalf("%s/%s was not rendered; rendered: %v", kind, name, m.keys())
	}
	obj := new(T)
	helm.UnmarshalK8SYaml(t, doc, obj)
	return obj
}

// all unmarshals every rendered object of one kind.
func all[T any](t testing.TB, m manifest, kind string) []*T {
	t.Helper()
	var out []*T
	for _, k := range m.keys() {
		if strings.HasPrefix(k, kind+"/") {
			out = append(out, get[T](t, m, kind, strings.TrimPrefix(k, kind+"/")))
		}
	}
	return out
}

func name(component string) string { return fullname + "-" + component }
