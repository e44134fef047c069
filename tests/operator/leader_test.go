package operator_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/tests/testenv"
)

func elected(o *operator) bool {
	select {
	case at := <-o.elected:
		o.elected <- at
		return true
	default:
		return false
	}
}

// waitReplicas waits until the broker Deployment of cluster asks for n replicas, which only
// a leading operator reconciles.
func waitReplicas(t *testing.T, c client.Client, cluster string, n int32) {
	t.Helper()
	kc := &v1alpha1.KafscaleCluster{}
	if err := get(t, c, cluster, kc); err != nil {
		t.Fatal(err)
	}
	before := kc.DeepCopy()
	kc.Spec.Brokers.Replicas = ptr.To(n)
	if err := c.Patch(context.Background(), kc, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	eventually(t, fmt.Sprintf("Deployment replicas %d", n), func() error {
		var d appsv1.Deployment
		if err := get(t, c, cluster+"-broker", &d); err != nil {
			return err
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != n {
			return fmt.Errorf("replicas %v", d.Spec.Replicas)
		}
		return nil
	})
}

// TestLeaderTakeover: replicas on one etcd leader key elect one leader; when it stops
// (resigning) or is SIGKILLed (its session expires after the TTL), another leads and
// reconciles. Takeover times are logged, not asserted. A replica on another key leads on
// its own.
func TestLeaderTakeover(t *testing.T) {
	e := startEnv(t)
	c := e.c
	create(t, c, credentialsSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey))
	key := "/test/" + randomKey() + "/leader"

	a := e.startOperator(t, e.operatorConfig(t, "op-a", key))
	b := e.startOperator(t, e.operatorConfig(t, "op-b", key))
	var first, second *operator
	eventually(t, "a leader", func() error {
		switch {
		case elected(a):
			first, second = a, b
		case elected(b):
			first, second = b, a
		default:
			return fmt.Errorf("no leader yet")
		}
		return nil
	})
	if elected(second) {
		t.Fatal("both replicas lead")
	}
	t.Logf("%s leads, %s follows", first.cfg.PodName, second.cfg.PodName)

	other := e.startOperator(t, e.operatorConfig(t, "op-other-key", "/test/"+randomKey()+"/leader"))
	eventually(t, "the replica on another key leads", func() error {
		if !elected(other) {
			return fmt.Errorf("not elected")
		}
		return nil
	})
	other.stop(t)

	create(t, c, e.cluster("ha", "s3-creds"))
	waitReplicas(t, c, "ha", 2)

	stoppedAt := time.Now()
	first.stop(t)
	eventually(t, "takeover after a graceful stop", func() error {
		if !elected(second) {
			return fmt.Errorf("%s not elected", second.cfg.PodName)
		}
		return nil
	})
	at := <-second.elected
	t.Logf("graceful stop (resign) at %s: %s led %v after %s stopped", stoppedAt.UTC().Format("15:04:05.000"), second.cfg.PodName, at.Sub(stoppedAt), first.cfg.PodName)
	waitReplicas(t, c, "ha", 4)

	// The built binary, killed without a chance to resign.
	bin := buildOperator(t)
	kubeconfig := writeKubeconfig(t, e)
	p1 := startBinary(t, e, bin, kubeconfig, "proc-1", key, false)
	second.stop(t)
	eventually(t, "proc-1 leads", func() error { return p1.leader("1") })
	p2 := startBinary(t, e, bin, kubeconfig, "proc-2", key, false)
	eventually(t, "proc-2 follows", func() error { return p2.leader("0") })
	waitReplicas(t, c, "ha", 5)

	killedAt := time.Now()
	if err := p1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p1.cmd.Wait()
	eventually(t, "proc-2 takes over", func() error { return p2.leader("1") })
	t.Logf("SIGKILL (lease TTL %s): proc-2 led %v after proc-1 was killed", 4*time.Second, time.Since(killedAt))
	waitReplicas(t, c, "ha", 1)
}

// operatorProgram is ./operator, built once per test binary.
var operatorProgram = testenv.Program{Pkg: "./operator"}

// TestMain removes the operator binary built for the package's tests.
func TestMain(m *testing.M) {
	code := m.Run()
	operatorProgram.Remove()
	os.Exit(code)
}

// buildOperator builds ./operator once per test binary.
func buildOperator(t *testing.T) string {
	t.Helper()
	return operatorProgram.Path(t)
}

func writeKubeconfig(t *testing.T, e *env) string {
	t.Helper()
	cfg := e.kube.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

type binaryOperator struct {
	cmd         *exec.Cmd
	metricsAddr string
}

// startBinary runs the built operator; with lease it gets no etcd endpoints (the chart's
// default) and elects through a Kubernetes Lease.
func startBinary(t *testing.T, e *env, bin, kubeconfig, id, key string, lease bool) *binaryOperator {
	t.Helper()
	cfg := e.operatorConfig(t, id, key)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+kubeconfig,
		"KAFSCALE_OPERATOR_NAMESPACE="+namespace,
		"KAFSCALE_OPERATOR_POD_NAME="+id,
		"KAFSCALE_OPERATOR_LEADER_KEY="+key,
		"KAFSCALE_OPERATOR_LEADER_TTL_SEC=4",
		"KAFSCALE_OPERATOR_BROKER_IMAGE="+cfg.BrokerImage,
		"KAFSCALE_OPERATOR_METRICS_ADDR="+cfg.MetricsAddr,
		"KAFSCALE_OPERATOR_HEALTH_ADDR="+cfg.HealthAddr,
	)
	if !lease {
		cmd.Env = append(cmd.Env, "KAFSCALE_OPERATOR_ETCD_ENDPOINTS="+strings.Join(e.etcd.Endpoints(), ","))
	}
	logFile, err := os.Create(filepath.Join(t.TempDir(), id+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &binaryOperator{cmd: cmd, metricsAddr: cfg.MetricsAddr}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("%s log:\n%s", id, b)
		}
	})
	return p
}

// leader checks the replica's kafscale_operator_leader series.
func (p *binaryOperator) leader(want string) error {
	// The process may still be starting: no connection reads as "".
	if got := metricNoFail(p.metricsAddr, "kafscale_operator_leader"); got != want {
		return fmt.Errorf("kafscale_operator_leader = %q, want %s", got, want)
	}
	return nil
}
