package config

import (
	"strings"
	"testing"

	"github.com/kafscale/kafscale/internal/env"
)

func TestPublicShowsNoCredentials(t *testing.T) {
	secrets := map[string]string{
		"KAFSCALE_S3_BUCKET":        "b",
		"KAFSCALE_S3_ACCESS_KEY":    "AKIDSECRET1",
		"KAFSCALE_S3_SECRET_KEY":    "secret-key-2",
		"KAFSCALE_S3_SESSION_TOKEN": "token-3",
		"KAFSCALE_S3_KMS_KEY_ID":    "kms-4",
		"KAFSCALE_ETCD_USERNAME":    "etcd-user-5",
		"KAFSCALE_ETCD_PASSWORD":    "etcd-pass-6",
		"KAFSCALE_S3_ENDPOINT":      "http://user7:pass8@s3.local:9000",
		"KAFSCALE_ETCD_ENDPOINTS":   "http://user9:pass10@etcd:2379",
	}
	c, err := Parse(env.Map(secrets))
	if err != nil {
		t.Fatal(err)
	}
	pub := c.Public()
	if pub["KAFSCALE_S3_BUCKET"] != "b" || pub["KAFSCALE_ALLOW_ADMIN_APIS"] != "true" {
		t.Fatalf("public settings: %v", pub)
	}
	for name, value := range pub {
		for secretName, secret := range secrets {
			if secretName == "KAFSCALE_S3_BUCKET" {
				continue
			}
			if strings.Contains(value, secret) || strings.Contains(value, "pass") {
				t.Errorf("%s=%q shows %s", name, value, secretName)
			}
		}
	}
}
