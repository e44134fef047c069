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
		}, "", Job{EtcdEndpoints: []string{"http://a:2379", "http://b:2379"}, Bucket: "b", Region: "eu-west-1", Endpoint: "http://s3:9000", PathStyle: true, Prefix: "snaps/ns/c/"}},
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
				j.Endpoint != tc.want.Endpoint || j.PathStyle != tc.want.PathStyle || j.Prefix != tc.want.Prefix {
				t.Errorf("job %+v, want %+v", j, tc.want)
			}
		})
	}
}
