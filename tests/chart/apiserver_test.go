package chart

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kafscale/kafscale/tests/testenv"
)

// One kube-apiserver (no controllers, no kubelet: nothing runs) serves every subtest: the
// server-side dry runs of each values shape and the release lifecycle with the helm CLI.
func TestAgainstKubeAPIServer(t *testing.T) {
	requireHelm(t)
	promCRDs := filepath.Join(testenv.BinDir(t), "prometheus-operator-crds")
	if _, err := os.Stat(filepath.Join(promCRDs, "monitoring.coreos.com_servicemonitors.yaml")); err != nil {
		t.Fatalf("the Prometheus Operator CRDs are missing from %s: run `make tools`", promCRDs)
	}
	start := time.Now()
	// Only the Prometheus Operator CRDs are preinstalled: ours come with the chart, and the
	// lifecycle installs them the way users do (the dry runs create them without storing).
	kube := testenv.StartKube(t, testenv.WithCRDPaths(promCRDs))
	t.Logf("kube-apiserver ready in %s", time.Since(start).Round(time.Millisecond))
	kubeconfig := writeKubeconfig(t, kube.Config)

	t.Run("dry-run", func(t *testing.T) {
		i := 0
		for shape, v := range shapes(t) {
			i++
			ns := fmt.Sprintf("dry-run-%d", i)
			t.Run(shape, func(t *testing.T) {
				createNamespace(t, kube.Client, ns)
				out, err := helm.RenderTemplateE(t, v.options(ns), chartDir(t), release, nil)
				if err != nil {
					t.Fatal(err)
				}
				objs := parseManifest(t, out).objects(t)
				for _, obj := range objs {
					dryRun(t, kube.Client, obj)
				}
				t.Logf("%d objects accepted", len(objs))
			})
		}
	})

	// The dry run has teeth: an unknown field is refused, in a built-in and in a
	// Prometheus Operator kind.
	t.Run("dry-run rejects unknown fields", func(t *testing.T) {
		createNamespace(t, kube.Client, "dry-run-negative")
		m := render(t, values{set: map[string]string{"metrics.serviceMonitor.enabled": "true"}}, "--namespace", "dry-run-negative")
		for _, obj := range m.objects(t) {
			if obj.GetKind() != "Deployment" && obj.GetKind() != "ServiceMonitor" {
				continue
			}
			obj.SetNamespace("dry-run-negative")
			if err := unstructured.SetNestedField(obj.Object, int64(1), "spec", "replicaz"); err != nil {
				t.Fatal(err)
			}
			err := kube.Client.Create(ctxFor(t), obj, client.DryRunAll, client.FieldValidation("Strict"))
			if err == nil || !strings.Contains(err.Error(), "replicaz") {
				t.Errorf("%s/%s with spec.replicaz: %v", obj.GetKind(), obj.GetName(), err)
			}
		}
	})

	t.Run("lifecycle", func(t *testing.T) {
		lifecycle(t, kube.Client, kubeconfig)
	})

	// The lifecycle leaves the current CRDs installed; their validation is the API server's.
	t.Run("crd-validation", func(t *testing.T) {
		crdValidation(t, kube.Client)
	})
}

func crdValidation(t *testing.T, c client.Client) {
	const ns = "crd-validation"
	createNamespace(t, c, ns)
	obj := func(kind, name string, spec map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "kafscale.io", Version: "v1alpha1", Kind: kind})
		u.SetNamespace(ns)
		u.SetName(name)
		return u
	}
	s3 := func(extra map[string]any) map[string]any {
		m := map[string]any{"bucket": "kafscale-data", "region": "eu-west-1"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	rejected := []struct {
		name string
		obj  *unstructured.Unstructured
		want string
	}{
		{"cluster without s3", obj("KafscaleCluster", "no-s3", map[string]any{}), `spec.s3: Required value`},
		{"bucket without region", obj("KafscaleCluster", "no-region", map[string]any{"s3": map[string]any{"bucket": "kafscale-data"}}), `spec.s3.region: Required value`},
		{"negative replicas", obj("KafscaleCluster", "neg", map[string]any{"s3": s3(nil), "brokers": map[string]any{"replicas": int64(-1)}}), `spec.brokers.replicas: Invalid value: -1`},
		{"service type", obj("KafscaleCluster", "svc", map[string]any{"s3": s3(nil), "brokers": map[string]any{"service": map[string]any{"type": "ExternalName"}}}), `Unsupported value: "ExternalName"`},
		{"source ranges without LoadBalancer", obj("KafscaleCluster", "ranges", map[string]any{"s3": s3(nil), "brokers": map[string]any{"service": map[string]any{"loadBalancerSourceRanges": []any{"10.0.0.0/8"}}}}), `loadBalancerSourceRanges needs type LoadBalancer`},
		{"readRegion without readBucket", obj("KafscaleCluster", "read", map[string]any{"s3": s3(map[string]any{"readRegion": "us-east-1"})}), `readRegion needs readBucket`},
		{"etcd endpoint without scheme", obj("KafscaleCluster", "etcd", map[string]any{"s3": s3(nil), "etcd": map[string]any{"endpoints": []any{"etcd:2379"}}}), `spec.etcd.endpoints[0]: Invalid value`},
		{"segment bytes below minimum", obj("KafscaleCluster", "seg", map[string]any{"s3": s3(nil), "config": map[string]any{"segmentBytes": int64(10)}}), `spec.config.segmentBytes: Invalid value: 10`},
		{"flush parallelism above the broker's 64", obj("KafscaleCluster", "par", map[string]any{"s3": s3(nil), "config": map[string]any{"flushParallelism": int64(65)}}), `spec.config.flushParallelism: Invalid value: 65`},
		{"no uploads at all", obj("KafscaleCluster", "par0", map[string]any{"s3": s3(nil), "config": map[string]any{"flushParallelism": int64(0)}}), `spec.config.flushParallelism: Invalid value: 0`},
		{"in-flight request budget below 1 MiB", obj("KafscaleCluster", "inflight", map[string]any{"s3": s3(nil), "config": map[string]any{"maxInflightRequestBytes": int64(65536)}}), `spec.config.maxInflightRequestBytes: Invalid value: 65536`},
		{"readahead above the broker's 64", obj("KafscaleCluster", "ra", map[string]any{"s3": s3(nil), "config": map[string]any{"readaheadSegments": int64(100)}}), `spec.config.readaheadSegments: Invalid value: 100`},
		{"topic without cluster", obj("KafscaleTopic", "orphan", map[string]any{"partitions": int64(3)}), `spec.clusterRef: Required value`},
		{"zero partitions", obj("KafscaleTopic", "zero", map[string]any{"clusterRef": "kafscale", "partitions": int64(0)}), `spec.partitions: Invalid value: 0`},
		{"bad topic name", obj("KafscaleTopic", "bad-name", map[string]any{"clusterRef": "kafscale", "topicName": "a b"}), `spec.topicName: Invalid value: "a b"`},
	}
	for _, tc := range rejected {
		err := c.Create(ctxFor(t), tc.obj)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}

	// Defaults apply, and transition rules guard updates.
	good := obj("KafscaleCluster", "good", map[string]any{"s3": s3(map[string]any{"readBucket": "kafscale-replica", "readRegion": "us-east-1"}),
		"config": map[string]any{"flushParallelism": int64(64), "maxInflightRequestBytes": int64(1 << 20), "readaheadSegments": int64(0)}})
	if err := c.Create(ctxFor(t), good); err != nil {
		t.Fatalf("valid cluster: %v", err)
	}
	replicas, _, _ := unstructured.NestedInt64(good.Object, "spec", "brokers", "replicas")
	port, _, _ := unstructured.NestedInt64(good.Object, "spec", "brokers", "advertisedPort")
	eq(t, "defaulted replicas and port", []int64{replicas, port}, []int64{3, 9092})

	topic := obj("KafscaleTopic", "orders", map[string]any{"clusterRef": "good", "partitions": int64(6)})
	if err := c.Create(ctxFor(t), topic); err != nil {
		t.Fatalf("valid topic: %v", err)
	}
	for _, tc := range []struct {
		field string
		value any
		want  string
	}{
		{"partitions", int64(3), "partitions can only grow"},
		{"clusterRef", "other", "clusterRef is immutable"},
	} {
		changed := topic.DeepCopy()
		if err := unstructured.SetNestedField(changed.Object, tc.value, "spec", tc.field); err != nil {
			t.Fatal(err)
		}
		if err := c.Update(ctxFor(t), changed); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("update %s to %v: got %v, want %q", tc.field, tc.value, err, tc.want)
		}
	}
	grown := topic.DeepCopy()
	_ = unstructured.SetNestedField(grown.Object, int64(12), "spec", "partitions")
	if err := c.Update(ctxFor(t), grown); err != nil {
		t.Errorf("growing partitions: %v", err)
	}
}

func ctxFor(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func createNamespace(t *testing.T, c client.Client, ns string) {
	t.Helper()
	err := c.Create(ctxFor(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// dryRun asks the API server to validate and admit one object without storing it, rejecting
// unknown fields. A CRD that already exists is dry-run updated instead.
func dryRun(t *testing.T, c client.Client, obj *unstructured.Unstructured) {
	t.Helper()
	id := obj.GetKind() + "/" + obj.GetName()
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(obj.GroupVersionKind())
	if obj.GetKind() == "CustomResourceDefinition" && c.Get(ctxFor(t), client.ObjectKeyFromObject(obj), live) == nil {
		obj.SetResourceVersion(live.GetResourceVersion())
		if err := c.Update(ctxFor(t), obj, client.DryRunAll, client.FieldValidation("Strict")); err != nil {
			t.Errorf("%s rejected: %v", id, err)
		}
		return
	}
	if err := c.Create(ctxFor(t), obj, client.DryRunAll, client.FieldValidation("Strict")); err != nil {
		t.Errorf("%s rejected: %v", id, err)
	}
}

// writeKubeconfig gives the helm CLI the envtest credentials (client certificate).
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// previousChart is the chart as an older release would ship it: version 0.0.9, with a
// KafscaleCluster CRD that lacks spec.s3.kmsKeyArn and the "Bucket" printer column, so the
// upgrade has a CRD change to carry.
func previousChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "kafscale")
	src := chartDir(t)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	chartYAML := filepath.Join(dst, "Chart.yaml")
	data, _ := os.ReadFile(chartYAML)
	data = []byte(strings.Replace(string(data), "\nversion: 0.1.0\n", "\nversion: 0.0.9\n", 1))
	if err := os.WriteFile(chartYAML, data, 0o644); err != nil {
		t.Fatal(err)
	}

	crdPath := filepath.Join(dst, "files", "crds", "kafscale.io_kafscaleclusters.yaml")
	data, _ = os.ReadFile(crdPath)
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	v := &crd.Spec.Versions[0]
	s3 := v.Schema.OpenAPIV3Schema.Properties["spec"].Properties["s3"]
	if _, ok := s3.Properties["kmsKeyArn"]; !ok {
		t.Fatal("the current CRD has no spec.s3.kmsKeyArn; pick another field for the upgrade test")
	}
	delete(s3.Properties, "kmsKeyArn")
	v.Schema.OpenAPIV3Schema.Properties["spec"].Properties["s3"] = s3
	v.AdditionalPrinterColumns = slices.DeleteFunc(v.AdditionalPrinterColumns, func(c apiextensionsv1.CustomResourceColumnDefinition) bool { return c.Name == "Bucket" })
	// Write it back without the empty status the typed struct would add.
	var obj map[string]any
	if data, err = json.Marshal(&crd); err == nil {
		err = json.Unmarshal(data, &obj)
	}
	if err != nil {
		t.Fatal(err)
	}
	delete(obj, "status")
	delete(obj["metadata"].(map[string]any), "creationTimestamp")
	out, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crdPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

type crdState struct {
	exists, hasBucketColumn, hasKMSField bool
}

func clusterCRD(t *testing.T, c client.Client) crdState {
	t.Helper()
	var crd apiextensionsv1.CustomResourceDefinition
	err := c.Get(ctxFor(t), client.ObjectKey{Name: "kafscaleclusters.kafscale.io"}, &crd)
	if apierrors.IsNotFound(err) {
		return crdState{}
	}
	if err != nil {
		t.Fatal(err)
	}
	v := crd.Spec.Versions[0]
	_, kms := v.Schema.OpenAPIV3Schema.Properties["spec"].Properties["s3"].Properties["kmsKeyArn"]
	col := slices.ContainsFunc(v.AdditionalPrinterColumns, func(c apiextensionsv1.CustomResourceColumnDefinition) bool { return c.Name == "Bucket" })
	return crdState{exists: true, hasBucketColumn: col, hasKMSField: kms}
}

var kscGVK = schema.GroupVersionKind{Group: "kafscale.io", Version: "v1alpha1", Kind: "KafscaleCluster"}

func kafscaleCluster(ns, name string, kms bool) *unstructured.Unstructured {
	s3 := map[string]any{"bucket": "kafscale-" + name, "region": "us-east-1"}
	if kms {
		s3["kmsKeyArn"] = "arn:aws:kms:us-east-1:123456789012:key/abc"
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"s3": s3, "brokers": map[string]any{"replicas": int64(3)}}}}
	u.SetGroupVersionKind(kscGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// createWhenEstablished retries while a just-applied CRD is not yet served.
func createWhenEstablished(t *testing.T, c client.Client, obj *unstructured.Unstructured) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = c.Create(ctxFor(t), obj.DeepCopy()); err == nil {
			return
		}
	}
	t.Fatalf("create %s: %v", obj.GetName(), err)
}

func kmsKeyOf(t *testing.T, c client.Client, ns, name string) (string, bool) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kscGVK)
	if err := c.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatalf("KafscaleCluster %s/%s: %v", ns, name, err)
	}
	v, found, _ := unstructured.NestedString(u.Object, "spec", "s3", "kmsKeyArn")
	return v, found
}

func lifecycle(t *testing.T, c client.Client, kubeconfig string) {
	const ns = "lifecycle"
	createNamespace(t, c, ns)
	opts := func(v values) *helm.Options {
		o := v.options(ns)
		o.KubectlOptions = k8s.NewKubectlOptions("", kubeconfig, ns)
		o.Logger = logger.Discard
		return o
	}
	helmCmd := func(v values, cmd string, args ...string) string {
		t.Helper()
		all := append([]string{}, args...)
		if cmd == "install" || cmd == "upgrade" {
			valueArgs := []string{}
			for k, val := range v.set {
				valueArgs = append(valueArgs, "--set", k+"="+val)
			}
			all = append(valueArgs, all...)
		}
		out, err := helm.RunHelmCommandAndGetOutputE(t, opts(v), cmd, all...)
		if err != nil {
			t.Fatalf("helm %s %v: %v\n%s", cmd, all, err, out)
		}
		return out
	}
	// rendered is what `helm template` makes of a chart and values, without test hooks
	// (Helm keeps hooks out of the release manifest).
	rendered := func(chart string, v values) manifest {
		out, err := helm.RenderTemplateE(t, opts(v), chart, release, nil, "--skip-tests")
		if err != nil {
			t.Fatal(err)
		}
		return parseManifest(t, out)
	}
	// asRendered checks the release manifest equals the rendering and every object in the
	// API server carries exactly what was rendered (the server adds defaults and status).
	asRendered := func(step string, want manifest) {
		t.Helper()
		got := parseManifest(t, helmCmd(values{}, "get", "manifest", release))
		eq(t, step+": release objects", got.keys(), want.keys())
		for _, obj := range want.objects(t) {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(obj.GroupVersionKind())
			if err := c.Get(ctxFor(t), client.ObjectKey{Namespace: obj.GetNamespace(), Name: obj.GetName()}, live); err != nil {
				t.Errorf("%s: %s/%s: %v", step, obj.GetKind(), obj.GetName(), err)
				continue
			}
			if path, ok := subset(jsonValue(t, obj.Object), jsonValue(t, live.Object), ""); !ok {
				t.Errorf("%s: %s/%s differs from the rendering at %s", step, obj.GetKind(), obj.GetName(), path)
			}
		}
	}
	deployments := func() []string {
		var names []string
		for _, comp := range []string{"operator", "proxy", "console"} {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"})
			if err := c.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name(comp)}, u); err == nil {
				names = append(names, u.GetName())
			}
		}
		return names
	}

	prev := previousChart(t)
	cur := chartDir(t)
	v1 := values{set: map[string]string{"console.auth.username": "admin", "console.auth.password": "first"}}
	v2 := values{set: map[string]string{"console.auth.username": "admin", "console.auth.password": "second",
		"proxy.replicaCount": "3", "metrics.serviceMonitor.enabled": "true", "metrics.prometheusRule.enabled": "true"}}

	// 1. install the previous chart.
	start := time.Now()
	out := helmCmd(v1, "install", release, prev)
	for _, want := range []string{"STATUS: deployed", "REVISION: 1", "rollout status deployment/" + name("operator"), "kind: KafscaleCluster", "helm test " + release} {
		if !strings.Contains(out, want) {
			t.Errorf("install output (NOTES) lacks %q:\n%s", want, out)
		}
	}
	asRendered("install", rendered(prev, v1))
	eq(t, "install: CRD", clusterCRD(t, c), crdState{exists: true})
	createWhenEstablished(t, c, kafscaleCluster(ns, "made-after-install", false))

	// 2. upgrade to the current chart with changed values: new objects, new CRD schema.
	helmCmd(v2, "upgrade", release, cur)
	asRendered("upgrade", rendered(cur, v2))
	eq(t, "upgrade: CRD upgraded", clusterCRD(t, c), crdState{exists: true, hasBucketColumn: true, hasKMSField: true})
	createWhenEstablished(t, c, kafscaleCluster(ns, "made-after-upgrade", true))
	if v, ok := kmsKeyOf(t, c, ns, "made-after-upgrade"); !ok || v == "" {
		t.Errorf("upgrade: the new field is not stored: %q %v", v, ok)
	}

	// 3. roll back to revision 1: its objects return, CRDs and custom resources stay.
	helmCmd(values{}, "rollback", release, "1")
	asRendered("rollback", rendered(prev, v1))
	eq(t, "rollback: CRD kept, at revision 1's schema", clusterCRD(t, c), crdState{exists: true})
	kmsKeyOf(t, c, ns, "made-after-install")
	if _, ok := kmsKeyOf(t, c, ns, "made-after-upgrade"); ok {
		t.Errorf("rollback: a field the older schema lacks is still served")
	}

	// 4. upgrade again.
	helmCmd(v2, "upgrade", release, cur)
	asRendered("upgrade again", rendered(cur, v2))
	eq(t, "upgrade again: CRD", clusterCRD(t, c), crdState{exists: true, hasBucketColumn: true, hasKMSField: true})
	if v, ok := kmsKeyOf(t, c, ns, "made-after-upgrade"); !ok || v == "" {
		t.Errorf("upgrade again: the field stored before the rollback is not back: %q %v", v, ok)
	}
	history := helmCmd(values{}, "history", release, "-o", "json")
	var revs []map[string]any
	if err := json.Unmarshal([]byte(history), &revs); err != nil {
		t.Fatalf("history: %v\n%s", err, history)
	}
	eq(t, "revisions", len(revs), 4)

	// 5. uninstall: the release's objects go, CRDs and custom resources stay.
	out = helmCmd(values{}, "uninstall", release)
	if !strings.Contains(out, "kept due to the resource policy") {
		t.Errorf("uninstall does not report the kept CRDs:\n%s", out)
	}
	eq(t, "uninstall: Deployments left", deployments(), []string(nil))
	eq(t, "uninstall: CRD kept", clusterCRD(t, c).exists, true)
	var topicCRD apiextensionsv1.CustomResourceDefinition
	if err := c.Get(ctxFor(t), client.ObjectKey{Name: "kafscaletopics.kafscale.io"}, &topicCRD); err != nil {
		t.Errorf("uninstall: KafscaleTopic CRD: %v", err)
	}
	kmsKeyOf(t, c, ns, "made-after-install")
	kmsKeyOf(t, c, ns, "made-after-upgrade")
	t.Logf("install, upgrade, rollback, upgrade, uninstall in %s", time.Since(start).Round(time.Millisecond))
}

// jsonValue normalises an object to what encoding/json makes of it (numbers as float64).
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// subset reports whether every field of want is in got with the same value; lists must
// have the same length. It returns the first differing path.
func subset(want, got any, path string) (string, bool) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path, false
		}
		for k, wv := range w {
			if p, ok := subset(wv, g[k], path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return path, false
		}
		for i := range w {
			if p, ok := subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	default:
		if reflect.DeepEqual(want, got) {
			return "", true
		}
		return fmt.Sprintf("%s (rendered %v, live %v)", path, want, got), false
	}
}
