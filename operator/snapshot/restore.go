package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	clientv3 "go.etcd.io/etcd/client/v3"
	etcdsnapshot "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// RevisionBump is added to the restored database's latest revision, which is then marked
// compacted (etcd's disaster-recovery advice): brokers, the proxy and the operator watch and
// compare revisions they saw before the loss, so revisions must never go backwards, and
// their watches must be told to resync rather than wait for a revision that comes later.
const RevisionBump = 1_000_000_000

// Restore is the configuration of `operator etcd-restore`, the init container of each
// managed etcd member. The member flags are etcd's own (the StatefulSet passes the same
// strings to etcd); where snapshots live comes from the KAFSCALE_SNAPSHOT_S3_* environment
// the snapshot Job reads too, credentials from the default AWS chain.
type Restore struct {
	DataDir             string            // --data-dir (required)
	Name                string            // --name (required)
	PeerURLs            []string          // --initial-advertise-peer-urls (required)
	InitialCluster      string            // --initial-cluster (required)
	InitialClusterToken string            // --initial-cluster-token (required)
	MemberClientURLs    map[string]string // --member-client-urls name=url,...: the other members to ask first
	PeerWait            time.Duration     // --peer-wait: how long the other members are asked

	Bucket    string // KAFSCALE_SNAPSHOT_S3_BUCKET (required)
	Region    string // KAFSCALE_SNAPSHOT_S3_REGION, default us-east-1
	Endpoint  string // KAFSCALE_SNAPSHOT_S3_ENDPOINT
	PathStyle bool   // KAFSCALE_SNAPSHOT_S3_PATH_STYLE
	Prefix    string // KAFSCALE_SNAPSHOT_PREFIX, ends with /
	Creds     Credentials

	Log *slog.Logger
}

// ParseRestore reads the command's flags and environment.
func ParseRestore(args []string, lookup func(string) (string, bool)) (*Restore, error) {
	r := &Restore{}
	fs := flag.NewFlagSet("etcd-restore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var peers, members string
	fs.StringVar(&r.DataDir, "data-dir", "", "etcd data directory of this member")
	fs.StringVar(&r.Name, "name", "", "member name")
	fs.StringVar(&peers, "initial-advertise-peer-urls", "", "this member's peer URLs")
	fs.StringVar(&r.InitialCluster, "initial-cluster", "", "name=peerURL,... of every member")
	fs.StringVar(&r.InitialClusterToken, "initial-cluster-token", "", "cluster token")
	fs.StringVar(&members, "member-client-urls", "", "name=clientURL,... of every member")
	fs.DurationVar(&r.PeerWait, "peer-wait", 5*time.Second, "how long the other members are asked whether this member already joined them")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("etcd-restore: %w", err)
	}
	r.PeerURLs = splitList(peers)
	r.MemberClientURLs = map[string]string{}
	for _, m := range splitList(members) {
		name, url, ok := strings.Cut(m, "=")
		if !ok || name == "" || url == "" {
			return nil, fmt.Errorf("etcd-restore: --member-client-urls entry %q is not name=url", m)
		}
		r.MemberClientURLs[name] = url
	}
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	r.Bucket, r.Region, r.Endpoint = get("KAFSCALE_SNAPSHOT_S3_BUCKET"), get("KAFSCALE_SNAPSHOT_S3_REGION"), get("KAFSCALE_SNAPSHOT_S3_ENDPOINT")
	r.PathStyle, r.Prefix = get("KAFSCALE_SNAPSHOT_S3_PATH_STYLE") == "true", get("KAFSCALE_SNAPSHOT_PREFIX")
	if r.Region == "" {
		r.Region = "us-east-1"
	}
	if r.Prefix != "" && !strings.HasSuffix(r.Prefix, "/") {
		r.Prefix += "/"
	}
	var err error
	if r.Creds, err = parseCredentials(get); err != nil {
		return nil, fmt.Errorf("etcd-restore: %w", err)
	}
	var missing []string
	for name, v := range map[string]string{"--data-dir": r.DataDir, "--name": r.Name, "--initial-advertise-peer-urls": peers,
		"--initial-cluster": r.InitialCluster, "--initial-cluster-token": r.InitialClusterToken, "KAFSCALE_SNAPSHOT_S3_BUCKET": r.Bucket} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("etcd-restore: %s required", strings.Join(missing, ", "))
	}
	return r, nil
}

func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// RestoreOutcome says what etcd-restore did.
type RestoreOutcome string

// What etcd-restore can do besides failing.
const (
	OutcomeDataPresent RestoreOutcome = "data-present" // the data dir holds data: nothing done
	OutcomeNoSnapshot  RestoreOutcome = "no-snapshot"  // none under the prefix: a fresh member
	OutcomeJoinPeers   RestoreOutcome = "join-peers"   // the others run, never restored: they replicate to it
	OutcomeRestored    RestoreOutcome = "restored"
)

// RestoreResult is etcd-restore's answer, printed as JSON.
type RestoreResult struct {
	Outcome RestoreOutcome `json:"outcome"`
	Member  string         `json:"member"`
	DataDir string         `json:"dataDir"`
	Bucket  string         `json:"bucket,omitempty"`
	Object  string         `json:"object,omitempty"`
	SHA256  string         `json:"sha256,omitempty"`
	Bytes   int64          `json:"bytes,omitempty"`
}

// Run restores the newest snapshot into an empty data dir when the whole cluster starts
// from it. A data dir with anything in it is left alone; no snapshot means a fresh member;
// other members that run and were never restored replicate to this one (join-peers). Every
// error says what is wrong and what to do; on error the data dir is left empty, so etcd
// never starts from a partial, unverified or divergent restore (the init container fails
// and Kubernetes retries it).
func (r *Restore) Run(ctx context.Context) (*RestoreResult, error) {
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	res := &RestoreResult{Member: r.Name, DataDir: r.DataDir}
	empty, err := dirEmpty(r.DataDir)
	if err != nil {
		return nil, fmt.Errorf("etcd data dir %s: %w", r.DataDir, err)
	}
	if !empty {
		log.Info("etcd data dir holds data: nothing to restore", "dataDir", r.DataDir, "member", r.Name)
		res.Outcome = OutcomeDataPresent
		return res, nil
	}

	s3c, err := newS3Client(ctx, r.Region, r.Endpoint, r.PathStyle, r.Creds)
	if err != nil {
		return nil, err
	}
	where := "s3://" + r.Bucket + "/" + r.Prefix
	key, err := newestSnapshot(ctx, s3c, r.Bucket, r.Prefix)
	if err != nil {
		return nil, fmt.Errorf("list etcd snapshots in %s: %w; check the bucket, region, endpoint and the credentials of spec.s3.credentialsSecretRef, then the pod retries", where, err)
	}
	if key == "" {
		log.Info("no etcd snapshot yet: starting a fresh member", "prefix", where, "member", r.Name)
		res.Outcome = OutcomeNoSnapshot
		return res, nil
	}
	peer, err := r.askPeers(ctx, log)
	if err != nil {
		return nil, err
	}
	if peer != nil && peer.revision < RevisionBump {
		// The others bootstrapped without a restore (their revisions were never bumped) and
		// this member never ran: etcd starts it empty and the leader replicates to it.
		log.Info("the other etcd members run and were never restored: this member joins them empty", "peer", peer.endpoint, "revision", peer.revision)
		res.Outcome = OutcomeJoinPeers
		return res, nil
	}

	// Everything is written next to the data dir, on the same volume (the root file system
	// is read-only), and renamed into place only once etcd's restore succeeded.
	parent := filepath.Dir(filepath.Clean(r.DataDir))
	download := filepath.Join(parent, ".etcd-restore-snapshot.db")
	staging := filepath.Clean(r.DataDir) + ".restoring"
	defer os.Remove(download)
	defer os.RemoveAll(staging)
	if err := os.RemoveAll(staging); err != nil {
		return nil, fmt.Errorf("remove the unfinished restore %s: %w", staging, err)
	}

	sum, n, err := fetch(ctx, s3c, r.Bucket, key, download)
	if err != nil {
		return nil, fmt.Errorf("read etcd snapshot s3://%s/%s: %w; check the bucket and credentials (the member does not start until the snapshot can be read), or move the object out of %s to restore the one before it", r.Bucket, key, err, where)
	}
	want, err := readChecksum(ctx, s3c, r.Bucket, key+".sha256")
	if err != nil {
		return nil, fmt.Errorf("read the checksum s3://%s/%s.sha256: %w; check the bucket and credentials, or move the snapshot and its .sha256 out of %s to restore the one before it", r.Bucket, key, err, where)
	}
	if sum != want {
		return nil, fmt.Errorf("etcd snapshot s3://%s/%s is corrupt: its SHA-256 is %s but %s.sha256 says %s; this member will not start from it. Move both objects out of %s to restore the snapshot before it (or remove every snapshot there to start an empty etcd)", r.Bucket, key, sum, key, want, where)
	}
	status, err := etcdsnapshot.NewV3(zap.NewNop()).Status(download)
	if err != nil {
		return nil, fmt.Errorf("etcd snapshot s3://%s/%s matches its checksum but is not a readable etcd database (%w); move it and its .sha256 out of %s to restore the snapshot before it", r.Bucket, key, err, where)
	}
	log.Info("etcd snapshot verified", "object", "s3://"+r.Bucket+"/"+key, "sha256", sum, "bytes", n, "revision", status.Revision)
	// Peers restored moments ago (this member started late) run from some snapshot at
	// revision R, now at R+RevisionBump or a little more. This member must restore that same
	// snapshot: their raft logs continue from the restore, so the leader replays only what
	// came after it. A snapshot taken since (revision above R+RevisionBump) is a different
	// starting point.
	if peer != nil && status.Revision+RevisionBump > peer.revision {
		return nil, fmt.Errorf("the other etcd members (%s at revision %d) were restored from an earlier snapshot than the newest, s3://%s/%s (revision %d), and member %s never ran with them: restoring either here would diverge from them. Restore the whole cluster again (delete every member's pod and claim together) or add this member with etcdctl member remove/add (docs/operations.md, \"Managed etcd: restore from snapshot\")", peer.endpoint, peer.revision, r.Bucket, key, status.Revision, r.Name)
	}

	err = etcdsnapshot.NewV3(zap.NewNop()).Restore(etcdsnapshot.RestoreConfig{
		SnapshotPath:        download,
		Name:                r.Name,
		OutputDataDir:       staging,
		PeerURLs:            r.PeerURLs,
		InitialCluster:      r.InitialCluster,
		InitialClusterToken: r.InitialClusterToken,
		RevisionBump:        RevisionBump,
		MarkCompacted:       true,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd restore of s3://%s/%s into %s for member %s: %w; the object matches its checksum, so it is not an etcd snapshot or the member flags are wrong: move it out of %s to restore the one before it", r.Bucket, key, r.DataDir, r.Name, err, where)
	}
	// An empty data dir (a mount point's subdirectory made by a previous attempt) makes way.
	if err := os.Remove(r.DataDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("replace the empty data dir %s: %w", r.DataDir, err)
	}
	if err := os.Rename(staging, r.DataDir); err != nil {
		return nil, fmt.Errorf("move the restored data into %s: %w", r.DataDir, err)
	}
	if d, err := os.Open(parent); err == nil {
		_ = d.Sync()
		d.Close()
	}
	log.Info("etcd member restored from snapshot", "member", r.Name, "object", "s3://"+r.Bucket+"/"+key, "dataDir", r.DataDir)
	res.Outcome, res.Bucket, res.Object, res.SHA256, res.Bytes = OutcomeRestored, r.Bucket, key, sum, n
	return res, nil
}

// peerState is what another member said.
type peerState struct {
	endpoint string
	revision int64
}

// askPeers asks the other members (for up to PeerWait) about this one. None answering means
// the whole cluster starts cold: restore (nil). A member that lists this one as having run
// means this member's volume was lost while the others kept theirs: a restored copy would
// diverge from them, so it is an error. Otherwise the answering member's revision tells
// whether the others were restored (see Run).
func (r *Restore) askPeers(ctx context.Context, log *slog.Logger) (*peerState, error) {
	var others []string
	for name, url := range r.MemberClientURLs {
		if name != r.Name {
			others = append(others, url)
		}
	}
	if len(others) == 0 {
		return nil, nil
	}
	slices.Sort(others)
	deadline := time.Now().Add(r.PeerWait)
	type answer struct {
		joined bool
		rev    int64
		err    error
	}
	for {
		// All members at once: one that does not answer costs its timeout only once a round.
		answers := make([]answer, len(others))
		var wg sync.WaitGroup
		for i, url := range others {
			wg.Go(func() {
				a := &answers[i]
				a.joined, a.rev, a.err = memberJoined(ctx, url, r.Name, r.PeerURLs)
			})
		}
		wg.Wait()
		for i, url := range others {
			joined, rev, err := answers[i].joined, answers[i].rev, answers[i].err
			if err != nil {
				log.Debug("etcd member did not answer", "endpoint", url, "err", err)
				continue
			}
			if joined {
				return nil, fmt.Errorf("member %s already ran in the etcd cluster that %s answers for, but its data dir %s is empty: its volume was lost while the other members kept theirs. Restoring a snapshot would make it diverge from them, so it stays down (the others keep the quorum). Take a fresh snapshot from the running members (POST /api/v1/etcd/snapshot on the operator) and restore the whole cluster from it, or replace the member with etcdctl member remove/add (docs/operations.md, \"Managed etcd: restore from snapshot\")", r.Name, url, r.DataDir)
			}
			log.Info("another etcd member answers and lists this member as never started", "endpoint", url, "revision", rev)
			return &peerState{endpoint: url, revision: rev}, nil
		}
		if time.Now().After(deadline) {
			log.Info("no other etcd member answers: the whole cluster starts from the snapshot", "asked", others)
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// memberJoined asks one member (locally: no quorum needed) whether the member named name,
// or with these peer URLs, has published itself, which a member does once it ran, and for
// its current revision.
func memberJoined(ctx context.Context, endpoint, name string, peerURLs []string) (bool, int64, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return false, 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status, err := cli.Status(ctx, endpoint)
	if err != nil {
		return false, 0, err
	}
	resp, err := cli.MemberList(ctx, clientv3.WithSerializable())
	if err != nil {
		return false, 0, err
	}
	for _, m := range resp.Members {
		same := m.Name == name
		for _, u := range m.PeerURLs {
			same = same || slices.Contains(peerURLs, u)
		}
		if same && m.Name != "" && len(m.ClientURLs) > 0 {
			return true, status.Header.Revision, nil
		}
	}
	return false, status.Header.Revision, nil
}

// dirEmpty reports whether dir is missing or an empty directory.
func dirEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return len(names) == 0, nil
}

// newestSnapshot is the key of the newest complete snapshot directly under prefix: an
// etcd-<UTC time>.db object whose .sha256 exists (Take writes the checksum last). Keys
// carry their time in a sortable form, so the newest is the greatest.
func newestSnapshot(ctx context.Context, cli *s3.Client, bucket, prefix string) (string, error) {
	objects := map[string]bool{}
	p := s3.NewListObjectsV2Paginator(cli, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", err
		}
		for _, o := range page.Contents {
			objects[aws.ToString(o.Key)] = true
		}
	}
	newest := ""
	for key := range objects {
		name := strings.TrimPrefix(key, prefix)
		if strings.HasPrefix(name, "etcd-") && strings.HasSuffix(name, ".db") && !strings.Contains(name, "/") && objects[key+".sha256"] && key > newest {
			newest = key
		}
	}
	return newest, nil
}

// fetch streams an object into path and returns its hex SHA-256 and size.
func fetch(ctx context.Context, cli *s3.Client, bucket, key, path string) (string, int64, error) {
	out, err := cli.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return "", 0, err
	}
	defer out.Body.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), out.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// readChecksum reads a .sha256 object: the hex digest, optionally followed by a file name
// as sha256sum writes it.
func readChecksum(ctx context.Context, cli *s3.Client, bucket, key string) (string, error) {
	out, err := cli.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 4096))
	if err != nil {
		return "", err
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return "", errors.New("the object is empty")
	}
	return strings.ToLower(fields[0]), nil
}
