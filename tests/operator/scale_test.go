package operator_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/tests/testenv"
)

// kubectl runs the real kubectl against the test's API server.
func kubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t, "kube/kubectl"), append([]string{"-n", namespace}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("kubectl %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	return string(out)
}

// TestOutsideScaling: the operations guide's commands against the broker Deployment are
// not undone by the operator — `kubectl scale` stays, `kubectl rollout restart` is kept,
// and while an HPA made by `kubectl autoscale` targets the brokers the operator leaves their
// replicas to it (and does not delete it). A changed spec (here through the KafscaleCluster's
// scale subresource) is applied when no HPA owns the count. Each "stays" is checked after a
// reconcile that is known to have run: the spec's segment size is changed with it, and the
// Deployment is read once the pod template carries the new value.
func TestOutsideScaling(t *testing.T) {
	e := startEnv(t)
	c := e.c
	kc := writeKubeconfig(t, e)
	create(t, c, guideSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey))
	cfg := e.operatorConfig(t, "op-a", "/test/"+randomKey()+"/leader")
	// No periodic re-check within the test: every reconcile below is caused by a change.
	cfg.SnapshotPreflightEvery = time.Hour
	e.startOperator(t, cfg)
	create(t, c, e.cluster("kafscale", "s3-creds"))
	const broker = "kafscale-broker"

	replicasAre := func(what string, want int32) {
		t.Helper()
		eventually(t, what, func() error {
			var d appsv1.Deployment
			if err := get(t, c, broker, &d); err != nil {
				return err
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != want {
				return fmt.Errorf("replicas %v, want %d", ptr.Deref(d.Spec.Replicas, -1), want)
			}
			return nil
		})
	}
	segment := int64(4 << 20)
	// reconciled changes the spec's segment size (and whatever more change does) in one
	// update, and returns the Deployment once the operator has applied that spec.
	reconciled := func(change func(*v1alpha1.KafscaleCluster)) *appsv1.Deployment {
		t.Helper()
		segment += 1 << 20
		var k v1alpha1.KafscaleCluster
		if err := get(t, c, "kafscale", &k); err != nil {
			t.Fatal(err)
		}
		before := k.DeepCopy()
		k.Spec.Config.SegmentBytes = ptr.To(segment)
		if change != nil {
			change(&k)
		}
		if err := c.Patch(t.Context(), &k, client.MergeFrom(before)); err != nil {
			t.Fatal(err)
		}
		var d appsv1.Deployment
		eventually(t, "the operator applied the changed spec", func() error {
			if err := get(t, c, broker, &d); err != nil {
				return err
			}
			for _, v := range d.Spec.Template.Spec.Containers[0].Env {
				if v.Name == "KAFSCALE_SEGMENT_BYTES" && v.Value == fmt.Sprint(segment) {
					return nil
				}
			}
			return fmt.Errorf("KAFSCALE_SEGMENT_BYTES is not %d yet", segment)
		})
		return &d
	}

	replicasAre("spec's 3 replicas", 3)
	if out := kubectl(t, kc, "get", "deployment", "-l", "app=kafscale-broker", "-o", "name"); strings.TrimSpace(out) != "deployment.apps/"+broker {
		t.Errorf("-l app=kafscale-broker selects %q", out)
	}
	var d appsv1.Deployment
	if err := get(t, c, broker, &d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Labels["app"] != "kafscale-broker" {
		t.Errorf("broker pods are not labelled app=kafscale-broker: %v", d.Spec.Template.Labels)
	}

	kubectl(t, kc, "scale", "deployment", broker, "--replicas=5")
	if got := *reconciled(nil).Spec.Replicas; got != 5 {
		t.Errorf("after kubectl scale --replicas=5 and a reconcile the Deployment has %d replicas", got)
	}

	kubectl(t, kc, "scale", "kafscalecluster", "kafscale", "--replicas=4")
	replicasAre("the spec's new count, set through the scale subresource", 4)

	kubectl(t, kc, "rollout", "restart", "deployment", broker)
	if err := get(t, c, broker, &d); err != nil {
		t.Fatal(err)
	}
	restartedAt := d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"]
	if restartedAt == "" {
		t.Fatalf("kubectl rollout restart left no annotation: %v", d.Spec.Template.Annotations)
	}
	if got := reconciled(nil).Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"]; got != restartedAt {
		t.Errorf("the operator dropped the rollout restart: restartedAt %q, want %q", got, restartedAt)
	}

	kubectl(t, kc, "autoscale", "deployment", broker, "--cpu-percent=70", "--min=3", "--max=12")
	// What the HPA controller does (none runs here): write the scale subresource.
	kubectl(t, kc, "scale", "deployment", broker, "--replicas=7")
	got := reconciled(func(k *v1alpha1.KafscaleCluster) { k.Spec.Brokers.Replicas = ptr.To[int32](2) })
	if *got.Spec.Replicas != 7 {
		t.Errorf("with an outside HPA and a changed spec the Deployment has %d replicas, want the HPA's 7", *got.Spec.Replicas)
	}
	var hpa autoscalingv2.HorizontalPodAutoscaler
	if err := get(t, c, broker, &hpa); err != nil {
		t.Errorf("the kubectl autoscale HPA is gone: %v", err)
	}

	// The HPA's deletion alone brings the spec's count back (the operator watches HPAs that
	// target broker Deployments).
	kubectl(t, kc, "delete", "hpa", broker)
	replicasAre("the spec's count once no HPA owns the brokers", 2)
}
