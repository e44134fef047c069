package controller

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCredentialsFromSecret(t *testing.T) {
	cases := []struct {
		name       string
		data       map[string]string
		id, secret string
		pair       string
	}{
		{"guide's keys", map[string]string{"KAFSCALE_S3_ACCESS_KEY": "g-id", "KAFSCALE_S3_SECRET_KEY": "g-key"}, "g-id", "g-key", "KAFSCALE_S3_ACCESS_KEY/KAFSCALE_S3_SECRET_KEY"},
		{"AWS keys", map[string]string{"AWS_ACCESS_KEY_ID": "a-id", "AWS_SECRET_ACCESS_KEY": "a-key"}, "a-id", "a-key", "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"},
		{"both: the guide's win", map[string]string{"KAFSCALE_S3_ACCESS_KEY": "g-id", "KAFSCALE_S3_SECRET_KEY": "g-key", "AWS_ACCESS_KEY_ID": "a-id", "AWS_SECRET_ACCESS_KEY": "a-key"}, "g-id", "g-key", "KAFSCALE_S3_ACCESS_KEY/KAFSCALE_S3_SECRET_KEY"},
		{"half the guide's pair falls back to AWS", map[string]string{"KAFSCALE_S3_ACCESS_KEY": "g-id", "AWS_ACCESS_KEY_ID": "a-id", "AWS_SECRET_ACCESS_KEY": "a-key"}, "a-id", "a-key", "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"},
		{"mixed halves", map[string]string{"KAFSCALE_S3_ACCESS_KEY": "g-id", "AWS_SECRET_ACCESS_KEY": "a-key"}, "", "", ""},
		{"empty", map[string]string{"password": "x"}, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3"}, Data: map[string][]byte{}}
			for k, v := range tc.data {
				sec.Data[k] = []byte(v)
			}
			got, err := CredentialsFromSecret(sec)
			if tc.pair == "" {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				for _, key := range []string{"s3", "KAFSCALE_S3_ACCESS_KEY", "KAFSCALE_S3_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
					if !strings.Contains(err.Error(), key) {
						t.Errorf("error %q does not name %s", err, key)
					}
				}
				return
			}
			if err != nil || got.AccessKey != tc.id || got.SecretKey != tc.secret || got.Pair != tc.pair {
				t.Errorf("got %+v, %v; want %s/%s from %s", got, err, tc.id, tc.secret, tc.pair)
			}
		})
	}
}
