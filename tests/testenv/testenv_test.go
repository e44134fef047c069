package testenv_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kafscale/kafscale/tests/testenv"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestS3PutGetPathStyle(t *testing.T) {
	s := testenv.StartS3(t)
	cli := s.Client()
	body := bytes.Repeat([]byte("kafscale-segment-"), 4096)
	key := "ns/topic/0/00000000000000000000.kfs"
	if _, err := cli.PutObject(ctx(t), &s3.PutObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatalf("put: %v", err)
	}
	out, err := cli.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("object read back differs: %d bytes, want %d", len(got), len(body))
	}
	// Ranged reads are how a fetch reads one partition's slice of a shared object.
	rng, err := cli.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key), Range: aws.String("bytes=17-33")})
	if err != nil {
		t.Fatalf("ranged get: %v", err)
	}
	part, _ := io.ReadAll(rng.Body)
	rng.Body.Close()
	if string(part) != "kafscale-segment-" {
		t.Fatalf("ranged get = %q", part)
	}
	// Path style: the object is a file under <data>/<bucket>/<key>, not a virtual host.
	if _, err := os.Stat(filepath.Join(s.DataDir, s.Bucket, key)); err != nil {
		t.Fatalf("object not stored under the bucket directory: %v", err)
	}
	list, err := cli.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String("ns/")})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != key {
		t.Fatalf("list = %+v", list.Contents)
	}
}

func TestS3RejectsWrongCredentials(t *testing.T) {
	s := testenv.StartS3(t)
	bad := *s
	bad.SecretKey = "wrong"
	_, err := bad.Client().PutObject(ctx(t), &s3.PutObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String("x"), Body: strings.NewReader("x"),
	})
	if err == nil {
		t.Fatal("put with a wrong secret key succeeded; the server must check signatures")
	}
}

func TestEtcdPutGetAndRestart(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := e.Client()
	if _, err := cli.Put(ctx(t), "/kafscale/test/key", "value-1"); err != nil {
		t.Fatalf("put: %v", err)
	}
	e.Stop()
	c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err := cli.Get(c, "/kafscale/test/key")
	cancel()
	if err == nil {
		t.Fatal("get succeeded while etcd was stopped")
	}
	e.Start()
	resp, err := cli.Get(ctx(t), "/kafscale/test/key")
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "value-1" {
		t.Fatalf("get after restart = %v, want value-1 kept across the restart", resp.Kvs)
	}
}

func TestKubeNamespaceAndCRD(t *testing.T) {
	k := testenv.StartKube(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kafscale-testenv"}}
	if err := k.Client.Create(ctx(t), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	// The source build reports the release it was built from, so charts' kubeVersion checks
	// and client version skew logic see a real version.
	dc, err := discovery.NewDiscoveryClientForConfig(k.Config)
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	info, err := dc.ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if !strings.HasPrefix(info.GitVersion, "v1.34.") || info.Major != "1" || info.Minor != "34" {
		t.Fatalf("kube-apiserver reports %+v, want v1.34.x (built with version ldflags by make tools)", info)
	}
	var gotNS corev1.Namespace
	if err := k.Client.Get(ctx(t), client.ObjectKey{Name: ns.Name}, &gotNS); err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	if gotNS.UID == "" || gotNS.Status.Phase != corev1.NamespaceActive {
		t.Fatalf("namespace = %+v, want an Active namespace with a UID", gotNS.Status)
	}

	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.testenv.kafscale.io"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "testenv.kafscale.io",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Required: []string{"size"}, Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"size": {Type: "integer", Minimum: ptr(1.0)},
						}},
					},
				}},
			}},
		},
	}
	if err := k.Client.Create(ctx(t), crd); err != nil {
		t.Fatalf("create CRD: %v", err)
	}
	gvk := schema.GroupVersionKind{Group: "testenv.kafscale.io", Version: "v1", Kind: "Widget"}
	widget := func(size int64) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		u.SetNamespace(ns.Name)
		u.SetName("w1")
		_ = unstructured.SetNestedField(u.Object, size, "spec", "size")
		return u
	}
	// The CRD is served once it is Established; until then creates answer NotFound.
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := k.Client.Create(ctx(t), widget(3))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create custom resource: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(gvk)
	if err := k.Client.Get(ctx(t), client.ObjectKey{Namespace: ns.Name, Name: "w1"}, got); err != nil {
		t.Fatalf("get custom resource: %v", err)
	}
	if size, _, _ := unstructured.NestedInt64(got.Object, "spec", "size"); size != 3 {
		t.Fatalf("spec.size = %d, want 3", size)
	}
	// The apiserver enforces the CRD's schema.
	bad := widget(0)
	bad.SetName("w2")
	if err := k.Client.Create(ctx(t), bad); err == nil || !strings.Contains(err.Error(), "spec.size") {
		t.Fatalf("create with spec.size=0 = %v, want a validation error naming spec.size", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestNoProcessLeftBehind starts every server inside a subtest and checks, once the subtest's
// cleanups have run, that no process mentioning their ports is still alive.
func TestNoProcessLeftBehind(t *testing.T) {
	var marks []string
	t.Run("start", func(t *testing.T) {
		e := testenv.StartEtcd(t)
		s := testenv.StartS3(t)
		k := testenv.StartKube(t)
		marks = append(marks, strings.TrimPrefix(e.Endpoints()[0], "http://"), strings.TrimPrefix(s.Endpoint, "http://"))
		kubeHostPort := strings.TrimPrefix(k.Config.Host, "https://")
		marks = append(marks, kubeHostPort[strings.LastIndex(kubeHostPort, ":")+1:])
		for _, m := range marks {
			if len(processesMentioning(t, m)) == 0 {
				t.Fatalf("no running process mentions %q; the check below would prove nothing", m)
			}
		}
	})
	for _, m := range marks {
		if pids := processesMentioning(t, m); len(pids) > 0 {
			t.Errorf("processes still running after cleanup that mention %q: %v", m, pids)
		}
	}
}

// processesMentioning lists the PIDs whose command line contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	var pids []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte(s)) {
			pids = append(pids, e.Name()+": "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return pids
}
