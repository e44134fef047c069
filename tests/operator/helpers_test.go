// Package operator_test runs the operator against a real kube-apiserver (envtest), a real
// etcd and a real S3 server (versitygw).
package operator_test

import (
	"os"
	"sync"

	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/go-logr/logr"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	ctrl "sigs.k8s.io/controller-runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/app"
	"github.com/kafscale/kafscale/operator/config"
	"github.com/kafscale/kafscale/tests/testenv"
)

const namespace = "kafscale"

// env is one kube-apiserver, etcd and S3 server shared by a test.
type env struct {
	kube *testenv.Kube
	etcd *testenv.Etcd
	s3   *testenv.S3
	c    client.Client
}

// The process-wide controller-runtime logger: shared by every in-process replica, so its
// lines are not attributed to one.
var setLogger sync.Once

func startEnv(t *testing.T, s3opts ...testenv.S3Option) *env {
	t.Helper()
	setLogger.Do(func() {
		ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	})
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		kube: testenv.StartKube(t, testenv.WithCRDPaths(filepath.Join(root, "charts/kafscale/files/crds"))),
		etcd: testenv.StartEtcd(t),
		s3:   testenv.StartS3(t, s3opts...),
	}
	scheme, err := app.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	if e.c, err = client.New(e.kube.Config, client.Options{Scheme: scheme}); err != nil {
		t.Fatal(err)
	}
	create(t, e.c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})
	return e
}

// operator is one in-process operator replica.
type operator struct {
	cfg     *config.Operator
	cancel  context.CancelFunc
	done    chan error
	elected chan time.Time
}

func randomKey() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *env) operatorConfig(t *testing.T, id, leaderKey string) *config.Operator {
	return &config.Operator{
		Namespace:              namespace,
		PodName:                id,
		LeaderKey:              leaderKey,
		LeaderTTL:              4 * time.Second,
		EtcdEndpoints:          e.etcd.Endpoints(),
		LeaderEtcdEndpoints:    e.etcd.Endpoints(),
		BrokerImage:            "ghcr.io/kafscale/broker:test",
		BrokerImagePullPolicy:  corev1.PullIfNotPresent,
		EtcdImage:              config.DefaultEtcdImage,
		BrokerEnvConfigMap:     "kafscale-broker-env",
		MetricsAddr:            fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		HealthAddr:             fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		SnapshotPreflightEvery: 2 * time.Second,
		SnapshotPrefix:         "etcd-snapshots",
		// The test's one bucket (the default is a dedicated bucket per cluster, which
		// tests/operator/snapshot_settings_test.go covers).
		SnapshotBucket:     e.s3.Bucket,
		SnapshotStaleAfter: config.DefaultSnapshotStaleAfter,
	}
}

// startOperator runs a replica until the test ends or stop is called.
func (e *env) startOperator(t *testing.T, cfg *config.Operator) *operator {
	t.Helper()
	return e.startOperatorOn(t, cfg, e.kube.Config)
}

// startOperatorOn runs a replica that reaches the API server through restConfig.
func (e *env) startOperatorOn(t *testing.T, cfg *config.Operator, restConfig *rest.Config) *operator {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o := &operator{cfg: cfg, cancel: cancel, done: make(chan error, 1), elected: make(chan time.Time, 1)}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("replica", cfg.PodName)
	go func() {
		o.done <- app.Run(ctx, app.Options{Config: cfg, RestConfig: restConfig, Logger: log,
			Elected: func() { o.elected <- time.Now() }})
	}()
	t.Cleanup(func() { o.stop(t) })
	return o
}

func (o *operator) stop(t *testing.T) {
	if o.cancel == nil {
		return
	}
	o.cancel()
	o.cancel = nil
	if err := <-o.done; err != nil {
		t.Errorf("operator %s: %v", o.cfg.PodName, err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func create(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// eventually is testenv.Eventually with the operator tests' minute-long bound and a label.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func() error {
		if err := check(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

func get(t *testing.T, c client.Client, name string, obj client.Object) error {
	return c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, obj)
}

func condition(conds []metav1.Condition, typ string) (metav1.ConditionStatus, string) {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status, c.Reason
		}
	}
	return "", ""
}

// clusterCondition waits for a cluster condition to reach status at the current generation.
func clusterCondition(t *testing.T, c client.Client, name, typ string, want metav1.ConditionStatus) *v1alpha1.KafscaleCluster {
	t.Helper()
	var kc v1alpha1.KafscaleCluster
	eventually(t, fmt.Sprintf("cluster %s condition %s=%s", name, typ, want), func() error {
		if err := get(t, c, name, &kc); err != nil {
			return err
		}
		for _, cond := range kc.Status.Conditions {
			if cond.Type == typ && cond.Status == want && cond.ObservedGeneration == kc.Generation {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", kc.Status.Conditions)
	})
	return &kc
}

// metric returns the value of one series line from the operator's /metrics, or "" if absent.
func metric(t *testing.T, addr, series string) string {
	t.Helper()
	if _, err := http.Get("http://" + addr + "/metrics"); err != nil {
		t.Fatal(err)
	}
	return metricNoFail(addr, series)
}

func metricNoFail(addr, series string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	return ""
}

func credentialsSecret(name, access, secret string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Data:       map[string][]byte{"AWS_ACCESS_KEY_ID": []byte(access), "AWS_SECRET_ACCESS_KEY": []byte(secret)},
	}
}

func (e *env) cluster(name, secret string) *v1alpha1.KafscaleCluster {
	return &v1alpha1.KafscaleCluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v1alpha1.KafscaleClusterSpec{
			S3: v1alpha1.S3Spec{Bucket: e.s3.Bucket, Region: e.s3.Region, Endpoint: e.s3.Endpoint, PathStyle: true,
				CredentialsSecretRef: &corev1.LocalObjectReference{Name: secret}},
		},
	}
}
