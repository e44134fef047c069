package snapshot

import (
	"strings"
	"testing"
)

func TestParseJob(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		err  string
		want Job
	}{
		{"full", map[string]string{
			"KAFSCALE_SNAPSHOT_ETCD_ENDPOINTS": "http://a:2379, http://b:2379", "KAFSCALE_SNAPSHOT_S3_BUCKET": "b",
			"KAFSCALE_SNAPSHOT_S3_REGION": "eu-west-1", "KAFSCALE_SNAPSHOT_S3_ENDPOINT": "http://s3:9000",
			"KAFSCALE_SNAPSHOT_S3_PATH_STYLE": "true", "KAFSCALE_SNAPSHOT_PREFIX": "snaps/ns/c",
			"KAFSCALE_S3_ACCESS_KEY": "id", "KAFSCALE_S3_SECRET_KEY": "key",
		}, "", Job{EtcdEndpoints: []string{"http://a:2379", "http://b:2379"}, Bucket: "b", Region: "eu-west-1", Endpoint: "http://s3:9000", PathStyle: true, Prefix: "snaps/ns/c/",
			Creds: Credentials{AccessKey: "id", SecretKey: "key"}}},
		{"half the guide's key pair", map[string]string{"KAFSCALE_SNAPSHOT_ETCD_ENDPOINTS": "http://a:2379", "KAFSCALE_SNAPSHOT_S3_BUCKET": "b", "KAFSCALE_S3_ACCESS_KEY": "id"},
			"KAFSCALE_S3_ACCESS_KEY and KAFSCALE_S3_SECRET_KEY must be set together", Job{}},
		{"defaults", map[string]string{"KAFSCALE_SNAPSHOT_ETCD_ENDPOINTS": "http://a:2379", "KAFSCALE_SNAPSHOT_S3_BUCKET": "b"},
			"", Job{EtcdEndpoints: []string{"http://a:2379"}, Bucket: "b", Region: "us-east-1"}},
		{"missing", map[string]string{}, "KAFSCALE_SNAPSHOT_ETCD_ENDPOINTS and KAFSCALE_SNAPSHOT_S3_BUCKET required", Job{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, err := ParseJob(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(j.EtcdEndpoints, ",") != strings.Join(tc.want.EtcdEndpoints, ",") || j.Bucket != tc.want.Bucket || j.Region != tc.want.Region ||
				j.Endpoint != tc.want.Endpoint || j.PathStyle != tc.want.PathStyle || j.Prefix != tc.want.Prefix || j.Creds != tc.want.Creds {
				t.Errorf("job %+v, want %+v", j, tc.want)
			}
		})
	}
}

func TestParseRestore(t *testing.T) {
	member := []string{"--name=prod-etcd-1", "--data-dir=/var/lib/etcd/data", "--initial-advertise-peer-urls=http://p1:2380",
		"--initial-cluster=prod-etcd-0=http://p0:2380,prod-etcd-1=http://p1:2380", "--initial-cluster-token=ns-prod"}
	env := map[string]string{"KAFSCALE_SNAPSHOT_S3_BUCKET": "b", "KAFSCALE_SNAPSHOT_PREFIX": "etcd-snapshots/ns/prod", "KAFSCALE_SNAPSHOT_S3_PATH_STYLE": "true"}
	lookup := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}

	r, err := ParseRestore(append(member, "--member-client-urls=prod-etcd-0=http://p0:2379, prod-etcd-1=http://p1:2379", "--peer-wait=2s"), lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "prod-etcd-1" || r.DataDir != "/var/lib/etcd/data" || strings.Join(r.PeerURLs, ",") != "http://p1:2380" || r.InitialClusterToken != "ns-prod" ||
		r.MemberClientURLs["prod-etcd-0"] != "http://p0:2379" || len(r.MemberClientURLs) != 2 || r.PeerWait.Seconds() != 2 ||
		r.Bucket != "b" || r.Region != "us-east-1" || !r.PathStyle || r.Prefix != "etcd-snapshots/ns/prod/" {
		t.Errorf("%+v", r)
	}
	// The last value of a flag wins (the tests override the in-cluster names that way).
	if r, err := ParseRestore(append(member, "--name=other"), lookup(env)); err != nil || r.Name != "other" || r.PeerWait.Seconds() != 5 {
		t.Errorf("override: %+v %v", r, err)
	}

	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"nothing", nil, nil, "--data-dir, --initial-advertise-peer-urls, --initial-cluster, --initial-cluster-token, --name, KAFSCALE_SNAPSHOT_S3_BUCKET required"},
		{"no bucket", member, nil, "KAFSCALE_SNAPSHOT_S3_BUCKET required"},
		{"bad member list", append(member, "--member-client-urls=prod-etcd-0"), env, `"prod-etcd-0" is not name=url`},
		{"unknown flag", append(member, "--initial-cluster-state=new"), env, "flag provided but not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseRestore(tc.args, lookup(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
