package controller

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// The keys a spec.s3.credentialsSecretRef Secret may hold. The operations guide's pair
// (KAFSCALE_S3_*) and the AWS SDK's pair are both accepted; when a Secret holds both
// complete pairs, the guide's pair wins everywhere (brokers read KAFSCALE_S3_* before the
// AWS chain; snapshot Jobs, restore init containers and the preflight do the same).
const (
	SecretKeyAccessKey    = "KAFSCALE_S3_ACCESS_KEY"
	SecretKeySecretKey    = "KAFSCALE_S3_SECRET_KEY"
	SecretKeySessionToken = "KAFSCALE_S3_SESSION_TOKEN"
	SecretKeyAWSAccessKey = "AWS_ACCESS_KEY_ID"
	SecretKeyAWSSecretKey = "AWS_SECRET_ACCESS_KEY"
	SecretKeyAWSSession   = "AWS_SESSION_TOKEN"
)

// secretCredentialKeys are mapped, each to an environment variable of the same name, into
// every pod that talks to S3 for a cluster. Each reference is optional, so a Secret holding
// either pair starts the pods; which pair is used is decided by the program reading them.
var secretCredentialKeys = []string{
	SecretKeyAccessKey, SecretKeySecretKey, SecretKeySessionToken,
	SecretKeyAWSAccessKey, SecretKeyAWSSecretKey, SecretKeyAWSSession,
}

// S3Credentials is a static key pair read from a credentials Secret.
type S3Credentials struct {
	AccessKey, SecretKey, SessionToken string
	// Pair names the keys used, for messages: "KAFSCALE_S3_ACCESS_KEY/KAFSCALE_S3_SECRET_KEY".
	Pair string
}

// MissingCredentialsMessage says which keys a credentials Secret must hold.
func MissingCredentialsMessage(secret string) string {
	return fmt.Sprintf("S3 credentials Secret %s holds neither %s and %s nor %s and %s: add one of these pairs (the first is what the operations guide uses)",
		secret, SecretKeyAccessKey, SecretKeySecretKey, SecretKeyAWSAccessKey, SecretKeyAWSSecretKey)
}

// CredentialsFromSecret picks the key pair of a credentials Secret: the guide's
// KAFSCALE_S3_ACCESS_KEY/KAFSCALE_S3_SECRET_KEY when both are set, else
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY. Neither pair complete is an error naming the
// keys expected.
func CredentialsFromSecret(sec *corev1.Secret) (S3Credentials, error) {
	get := func(k string) string {
		if v, ok := sec.Data[k]; ok {
			return string(v)
		}
		return sec.StringData[k]
	}
	if id, key := get(SecretKeyAccessKey), get(SecretKeySecretKey); id != "" && key != "" {
		return S3Credentials{AccessKey: id, SecretKey: key, SessionToken: get(SecretKeySessionToken), Pair: SecretKeyAccessKey + "/" + SecretKeySecretKey}, nil
	}
	if id, key := get(SecretKeyAWSAccessKey), get(SecretKeyAWSSecretKey); id != "" && key != "" {
		return S3Credentials{AccessKey: id, SecretKey: key, SessionToken: get(SecretKeyAWSSession), Pair: SecretKeyAWSAccessKey + "/" + SecretKeyAWSSecretKey}, nil
	}
	return S3Credentials{}, fmt.Errorf("%s", MissingCredentialsMessage(sec.Name))
}

// s3CredentialEnv maps every credential key of the Secret, optionally, into the pod's
// environment under its own name. Without a Secret the pods use their own identity.
func s3CredentialEnv(ref *corev1.LocalObjectReference) []corev1.EnvVar {
	if ref == nil {
		return nil
	}
	env := make([]corev1.EnvVar, 0, len(secretCredentialKeys))
	for _, key := range secretCredentialKeys {
		optional := true
		env = append(env, corev1.EnvVar{Name: key, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: *ref, Key: key, Optional: &optional},
		}})
	}
	return env
}
