package operator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
	"github.com/kafscale/kafscale/operator/controller"
	opsnapshot "github.com/kafscale/kafscale/operator/snapshot"
	"github.com/kafscale/kafscale/tests/testenv"
)

// restoreEnv is a real etcd holding a cluster's keys, a real S3 server, the built operator
// binary and the managed etcd's restore init container as the operator builds it.
type restoreEnv struct {
	etcd    *testenv.Etcd
	s3      *testenv.S3
	bin     string
	secret  *corev1.Secret
	cluster *v1alpha1.KafscaleCluster
	prefix  string
	init    corev1.Container
}

func startRestoreEnv(t *testing.T) *restoreEnv {
	t.Helper()
	r := &restoreEnv{etcd: testenv.StartEtcd(t), s3: testenv.StartS3(t), bin: buildOperator(t)}
	r.secret = credentialsSecret("s3-creds", r.s3.AccessKey, r.s3.SecretKey)
	r.cluster = &v1alpha1.KafscaleCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "prod", Namespace: namespace},
		Spec: v1alpha1.KafscaleClusterSpec{S3: v1alpha1.S3Spec{Bucket: r.s3.Bucket, Region: r.s3.Region, Endpoint: r.s3.Endpoint, PathStyle: true,
			CredentialsSecretRef: &corev1.LocalObjectReference{Name: "s3-creds"}}},
	}
	cfg := &config.Operator{EtcdImage: config.DefaultEtcdImage, OperatorImage: "ghcr.io/kafscale/operator:test", SnapshotPrefix: "etcd-snapshots"}
	cfg.SnapshotBucket = r.s3.Bucket // where the test takes and plants its snapshots
	r.prefix = controller.SnapshotPrefix(cfg, r.cluster)
	inits := controller.EtcdStatefulSet(r.cluster, cfg).Spec.Template.Spec.InitContainers
	if len(inits) != 1 {
		t.Fatalf("managed etcd init containers: %+v", inits)
	}
	r.init = inits[0]
	return r
}

// member is one loopback etcd member of a 3-member cluster named like the StatefulSet's pods.
type member struct {
	name, clientURL, peerURL, dataDir string
}

func loopbackMembers(t *testing.T) []member {
	dir := t.TempDir()
	ms := make([]member, 3)
	for i := range ms {
		ms[i] = member{
			name:      fmt.Sprintf("prod-etcd-%d", i),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)),
			// Inside the pod: <volume>/data, and etcd-restore writes next to it.
			dataDir: filepath.Join(dir, fmt.Sprintf("volume-%d", i), "data"),
		}
		if err := os.MkdirAll(filepath.Dir(ms[i].dataDir), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return ms
}

func joinMembers(ms []member, url func(member) string) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.name + "=" + url(m)
	}
	return strings.Join(parts, ",")
}

// runRestore runs the init container's command, as the kubelet would, for member m of ms:
// its args with $(POD_NAME) expanded and its environment with the secretKeyRefs resolved.
// Only what exists inside Kubernetes alone is overridden by later flags (the last value of
// a flag wins): the members' DNS names become loopback URLs and the volume a directory.
func (r *restoreEnv) runRestore(t *testing.T, ms []member, m member, extra ...string) (*opsnapshot.RestoreResult, string, error) {
	t.Helper()
	var args []string
	for _, a := range r.init.Args {
		args = append(args, strings.ReplaceAll(a, "$(POD_NAME)", m.name))
	}
	args = append(args,
		"--data-dir="+m.dataDir,
		"--initial-advertise-peer-urls="+m.peerURL,
		"--initial-cluster="+joinMembers(ms, func(m member) string { return m.peerURL }),
		"--member-client-urls="+joinMembers(ms, func(m member) string { return m.clientURL }),
		"--peer-wait=1s",
	)
	args = append(args, extra...)
	cmd := exec.Command(r.bin, args...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "AWS_EC2_METADATA_DISABLED=true"}
	for _, v := range r.init.Env {
		value := v.Value
		switch ref := v.ValueFrom; {
		case ref == nil:
		case ref.SecretKeyRef != nil:
			value = string(r.secret.Data[ref.SecretKeyRef.Key])
		case ref.FieldRef != nil && ref.FieldRef.FieldPath == "metadata.name":
			value = m.name
		default:
			t.Fatalf("env %s: unexpected source %+v", v.Name, ref)
		}
		cmd.Env = append(cmd.Env, v.Name+"="+value)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("etcd-restore %s: %v in %v", m.name, err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		return nil, stderr.String(), err
	}
	var res opsnapshot.RestoreResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("etcd-restore output %q: %v (stderr %s)", stdout.String(), err, stderr.String())
	}
	return &res, stderr.String(), nil
}

// takeSnapshot writes a snapshot of the test etcd where the cluster's snapshots go, with the
// snapshot code the CronJob and the ops API use.
func (r *restoreEnv) takeSnapshot(t *testing.T) *opsnapshot.Result {
	t.Helper()
	res, err := opsnapshot.Take(context.Background(), r.etcd.Client(), r.s3.Client(), r.s3.Bucket, r.prefix)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// startMember runs the real etcd binary (bin/etcd, the release the managed etcd image
// runs) on a member's data dir, with the flags the StatefulSet's etcd container uses.
func startMember(t *testing.T, ms []member, m member) {
	t.Helper()
	logPath := filepath.Join(filepath.Dir(m.dataDir), "etcd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Binary(t, "etcd"),
		"--name="+m.name, "--data-dir="+m.dataDir,
		"--listen-client-urls="+m.clientURL, "--advertise-client-urls="+m.clientURL,
		"--listen-peer-urls="+m.peerURL, "--initial-advertise-peer-urls="+m.peerURL,
		"--initial-cluster="+joinMembers(ms, func(m member) string { return m.peerURL }),
		"--initial-cluster-state=new", "--initial-cluster-token=kafscale-prod", "--log-level=warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", m.name, b)
		}
	})
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestEtcdRestoreFromSnapshot: keys written to a real etcd, a snapshot of it in the real S3
// server through the snapshot code, then the managed etcd's init container (the built binary,
// the builder's args and environment) restores it into empty member dirs; real etcd v3.6
// processes start on them, form a quorum and serve the keys, at revisions above every
// revision the old cluster used, with the old history marked compacted (watchers resync
// rather than wait). A member restored after its peers started joins them with the same
// data; a member that had run and lost its volume is refused a restore.
func TestEtcdRestoreFromSnapshot(t *testing.T) {
	r := startRestoreEnv(t)
	ctx := context.Background()
	src := r.etcd.Client()
	want := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("/kafscale/%s/prod/partitions/orders/%d", namespace, i), fmt.Sprintf(`{"highWatermark":%d}`, i*100)
		want[k] = v
		if _, err := src.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	want["/kafscale/"+namespace+"/prod/metadata"] = `{"clusterId":"restored"}`
	put, err := src.Put(ctx, "/kafscale/"+namespace+"/prod/metadata", `{"clusterId":"restored"}`)
	if err != nil {
		t.Fatal(err)
	}
	oldRev := put.Header.Revision
	snap := r.takeSnapshot(t)
	// Not snapshots of this cluster, though newer by name: an upload that never got its
	// .sha256 (interrupted), the preflight probe, and objects in a deeper "directory".
	for _, k := range []string{
		r.prefix + "etcd-99991231T235959.999Z.db",
		r.prefix + ".preflight",
		r.prefix + "other/etcd-99991231T235959.999Z.db", r.prefix + "other/etcd-99991231T235959.999Z.db.sha256",
	} {
		if _, err := r.s3.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &r.s3.Bucket, Key: &k, Body: strings.NewReader("not a snapshot")}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("snapshot %s: %d bytes at revision %d", snap.Object, snap.Bytes, oldRev)

	ms := loopbackMembers(t)
	restore := func(m member) string {
		t.Helper()
		res, stderr, err := r.runRestore(t, ms, m)
		if err != nil {
			t.Fatalf("etcd-restore %s: %v\n%s", m.name, err, stderr)
		}
		if res.Outcome != opsnapshot.OutcomeRestored || res.Object != snap.Object || res.SHA256 != snap.SHA256 || res.Bytes != int64(snap.Bytes) {
			t.Errorf("%s: %+v, want object %s sha256 %s", m.name, res, snap.Object, snap.SHA256)
		}
		if got := dirEntries(t, filepath.Dir(m.dataDir)); strings.Join(got, ",") != "data" {
			t.Errorf("the volume of %s holds %v, want only data (no download or staging left)", m.name, got)
		}
		if info, err := os.Stat(filepath.Join(m.dataDir, "member", "wal")); err != nil || !info.IsDir() {
			t.Errorf("%s: no WAL in the restored data dir: %v", m.name, err)
		}
		return stderr
	}
	// Members 0 and 1 restore while no member runs, start and form a quorum.
	restore(ms[0])
	restore(ms[1])
	started := time.Now()
	startMember(t, ms, ms[0])
	startMember(t, ms, ms[1])
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ms[0].clientURL, ms[1].clientURL, ms[2].clientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var resp *clientv3.GetResponse
	testenv.Eventually(t, time.Minute, func() error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		resp, err = cli.Get(c, "/kafscale/", clientv3.WithPrefix()) // linearizable: needs the quorum
		return err
	})
	t.Logf("two restored etcd v3.6 members answered a linearizable read %v after start", time.Since(started).Round(time.Millisecond))
	// Member 2 comes late (its pod was scheduled later): its peers answer and list it as
	// never started. A snapshot taken since the restore is not what they started from:
	// refused, and nothing written.
	newer, err := opsnapshot.Take(ctx, cli, r.s3.Client(), r.s3.Bucket, r.prefix)
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, err := r.runRestore(t, ms, ms[2])
	if err == nil || !strings.Contains(stderr, "were restored from an earlier snapshot than the newest") {
		t.Errorf("late member with a snapshot newer than the restore: err %v, stderr %s", err, stderr)
	}
	if entries := dirEntries(t, filepath.Dir(ms[2].dataDir)); len(entries) != 0 {
		t.Errorf("refused restore left %v", entries)
	}
	t.Logf("refused: %s", lastLine(stderr))
	for _, k := range []string{newer.Object, newer.Checksum} {
		if _, err := r.s3.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &r.s3.Bucket, Key: &k}); err != nil {
			t.Fatal(err)
		}
	}
	// With the snapshot they started from the newest again, it restores that one and joins.
	if stderr := restore(ms[2]); !strings.Contains(stderr, "lists this member as never started") {
		t.Errorf("late member: %s", stderr)
	}
	startMember(t, ms, ms[2])
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	if len(got) != len(want) {
		t.Errorf("restored %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if resp.Header.Revision < oldRev+opsnapshot.RevisionBump {
		t.Errorf("restored revision %d, want at least %d (old %d + bump)", resp.Header.Revision, oldRev+opsnapshot.RevisionBump, oldRev)
	}
	if _, err := cli.Get(ctx, "/kafscale/", clientv3.WithPrefix(), clientv3.WithRev(oldRev)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("reading at the old revision %d: %v, want %v", oldRev, err, rpctypes.ErrCompacted)
	}
	if _, err := cli.Put(ctx, "/kafscale/"+namespace+"/prod/after-restore", "x"); err != nil {
		t.Errorf("write after the restore: %v", err)
	}
	// The late member serves the same data as the others, and what was written since.
	late, err := clientv3.New(clientv3.Config{Endpoints: []string{ms[2].clientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	testenv.Eventually(t, time.Minute, func() error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		r, err := late.Get(c, "/kafscale/", clientv3.WithPrefix(), clientv3.WithSerializable()) // its own copy
		if err != nil {
			return err
		}
		if len(r.Kvs) != len(want)+1 {
			return fmt.Errorf("member 2 holds %d keys, want %d", len(r.Kvs), len(want)+1)
		}
		for _, kv := range r.Kvs {
			if v, ok := want[string(kv.Key)]; ok && v != string(kv.Value) {
				return fmt.Errorf("member 2: %s = %q, want %q", kv.Key, kv.Value, v)
			}
		}
		return nil
	})
	members, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members.Members {
		t.Logf("member %s %x peer %v client %v", m.Name, m.ID, m.PeerURLs, m.ClientURLs)
	}
	if len(members.Members) != 3 {
		t.Errorf("%d members, want 3", len(members.Members))
	}

	// A member whose volume is lost while the others run must not restore the snapshot
	// (it would diverge from them): the restored cluster lists it as having run.
	lost := ms[2]
	lost.dataDir = filepath.Join(t.TempDir(), "data")
	_, stderr, err = r.runRestore(t, ms, lost)
	if err == nil || !strings.Contains(stderr, "already ran in the etcd cluster") || !strings.Contains(stderr, "restore the whole cluster from it") {
		t.Errorf("restoring a member that already ran beside running peers: err %v, stderr %s", err, stderr)
	}
	if entries := dirEntries(t, lost.dataDir); len(entries) != 0 {
		t.Errorf("refused restore left %v", entries)
	}
	t.Logf("refused: %s", lastLine(stderr))
}

// TestEtcdRestoreLeavesAlone: no snapshot yet → a fresh member (exit 0); a data dir with
// data → untouched (exit 0); a snapshot that does not match its .sha256 → exit non-zero
// with a sentence saying what is wrong and what to do, and the data dir stays empty so etcd
// never starts from it.
func TestEtcdRestoreLeavesAlone(t *testing.T) {
	r := startRestoreEnv(t)
	ctx := context.Background()
	ms := loopbackMembers(t)

	res, stderr, err := r.runRestore(t, ms, ms[0])
	if err != nil || res.Outcome != opsnapshot.OutcomeNoSnapshot {
		t.Fatalf("no snapshot: %+v %v\n%s", res, err, stderr)
	}
	if entries := dirEntries(t, ms[0].dataDir); len(entries) != 0 {
		t.Errorf("no snapshot, yet the data dir holds %v", entries)
	}
	t.Logf("no snapshot: %s", lastLine(stderr))

	if _, err := r.etcd.Client().Put(ctx, "/kafscale/"+namespace+"/prod/metadata", "{}"); err != nil {
		t.Fatal(err)
	}
	snap := r.takeSnapshot(t)

	if err := os.MkdirAll(filepath.Join(ms[1].dataDir, "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(ms[1].dataDir, "member", "keep")
	if err := os.WriteFile(marker, []byte("existing data"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, stderr, err = r.runRestore(t, ms, ms[1])
	if err != nil || res.Outcome != opsnapshot.OutcomeDataPresent {
		t.Fatalf("data present: %+v %v\n%s", res, err, stderr)
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "existing data" || strings.Join(dirEntries(t, ms[1].dataDir), ",") != "member" {
		t.Errorf("existing data dir changed: %q %v %v", b, err, dirEntries(t, ms[1].dataDir))
	}

	// The snapshot object replaced by other bytes: its .sha256 no longer matches.
	if _, err := r.s3.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &r.s3.Bucket, Key: &snap.Object, Body: bytes.NewReader(bytes.Repeat([]byte{0x42}, snap.Bytes))}); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = r.runRestore(t, ms, ms[2])
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("corrupt snapshot: err %v, want a non-zero exit", err)
	}
	for _, want := range []string{snap.Object + " is corrupt", snap.SHA256, "will not start from it", "Move both objects out of"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("corrupt snapshot message lacks %q: %s", want, stderr)
		}
	}
	if entries := dirEntries(t, filepath.Dir(ms[2].dataDir)); len(entries) != 0 {
		t.Errorf("a failed restore left %v in the volume", entries)
	}
	t.Logf("corrupt snapshot: %s", lastLine(stderr))

	// Credentials S3 refuses: the bucket cannot be read, so the member does not start.
	r.secret.Data["AWS_SECRET_ACCESS_KEY"] = []byte("wrong")
	_, stderr, err = r.runRestore(t, ms, ms[2])
	if !errors.As(err, &exit) || exit.ExitCode() == 0 || !strings.Contains(stderr, "check the bucket, region, endpoint and the credentials") {
		t.Errorf("denied S3: err %v, stderr %s", err, stderr)
	}
	t.Logf("denied S3: %s", lastLine(stderr))
}

// TestEtcdRestoreLateMemberOfFreshCluster: two members bootstrapped empty (no snapshot then)
// run; the third starts only after a snapshot exists. It must not restore it — the others'
// raft log starts at the bootstrap, so the leader replays everything to it — and starts
// empty; real etcd then replicates the data to it.
func TestEtcdRestoreLateMemberOfFreshCluster(t *testing.T) {
	r := startRestoreEnv(t)
	ctx := context.Background()
	ms := loopbackMembers(t)
	startMember(t, ms, ms[0])
	startMember(t, ms, ms[1])
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ms[0].clientURL, ms[1].clientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	key := "/kafscale/" + namespace + "/prod/metadata"
	testenv.Eventually(t, time.Minute, func() error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := cli.Put(c, key, "fresh")
		return err
	})
	r.takeSnapshot(t) // of another etcd: restoring it here would be wrong

	res, stderr, err := r.runRestore(t, ms, ms[2])
	if err != nil || res.Outcome != opsnapshot.OutcomeJoinPeers {
		t.Fatalf("late member of a fresh cluster: %+v %v\n%s", res, err, stderr)
	}
	if entries := dirEntries(t, filepath.Dir(ms[2].dataDir)); len(entries) != 0 {
		t.Errorf("join-peers left %v in the volume", entries)
	}
	t.Logf("late member: %s", lastLine(stderr))
	startMember(t, ms, ms[2])
	late, err := clientv3.New(clientv3.Config{Endpoints: []string{ms[2].clientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	testenv.Eventually(t, time.Minute, func() error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		resp, err := late.Get(c, key, clientv3.WithSerializable())
		if err != nil {
			return err
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "fresh" {
			return fmt.Errorf("member 2 holds %v", resp.Kvs)
		}
		return nil
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
