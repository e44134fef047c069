package chart

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/helm"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/kafscale/kafscale/operator/leader"
)

const appVersion = "0.1.0" // Chart.yaml appVersion; image tags default to it

func eq[T any](t testing.TB, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// env returns a container's variable by name.
func env(t testing.TB, c corev1.Container, key string) corev1.EnvVar {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == key {
			return e
		}
	}
	t.Fatalf("container %s has no %s; it has %v", c.Name, key, envNames(c))
	return corev1.EnvVar{}
}

func envNames(c corev1.Container) []string {
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
	}
	return names
}

func hasEnv(c corev1.Container, key string) bool { return slices.Contains(envNames(c), key) }

func deployment(t testing.TB, m manifest, component string) *appsv1.Deployment {
	t.Helper()
	return get[appsv1.Deployment](t, m, "Deployment", name(component))
}

func container(t testing.TB, m manifest, component string) corev1.Container {
	t.Helper()
	return deployment(t, m, component).Spec.Template.Spec.Containers[0]
}

func brokerEnv(t testing.TB, m manifest) map[string]string {
	t.Helper()
	return get[corev1.ConfigMap](t, m, "ConfigMap", name("broker-env")).Data
}

// podSpecs returns every pod spec the chart renders: Deployment templates and test Pods.
func podSpecs(t testing.TB, m manifest) map[string]corev1.PodSpec {
	t.Helper()
	specs := map[string]corev1.PodSpec{}
	for _, d := range all[appsv1.Deployment](t, m, "Deployment") {
		specs["Deployment/"+d.Name] = d.Spec.Template.Spec
	}
	for _, p := range all[corev1.Pod](t, m, "Pod") {
		specs["Pod/"+p.Name] = p.Spec
	}
	return specs
}

func TestDefaultRenderMakesExactlyTheseObjects(t *testing.T) {
	m := render(t, values{})
	want := []string{
		"ConfigMap/" + name("broker-env"),
		"CustomResourceDefinition/kafscaleclusters.kafscale.io",
		"CustomResourceDefinition/kafscaletopics.kafscale.io",
		"Deployment/" + name("console"),
		"Deployment/" + name("operator"),
		"Deployment/" + name("proxy"),
		"Pod/" + name("test-consume"),
		"Pod/" + name("test-metadata"),
		"Pod/" + name("test-produce"),
		"PodDisruptionBudget/" + name("operator"),
		"PodDisruptionBudget/" + name("proxy"),
		"Role/" + name("operator"),
		"RoleBinding/" + name("operator"),
		"Service/" + name("console"),
		"Service/" + name("console-operator-metrics"),
		"Service/" + name("operator-metrics"),
		"Service/" + name("proxy"),
		"Service/" + name("proxy-internal"),
		"Service/" + name("proxy-metrics"),
		"ServiceAccount/" + name("console"),
		"ServiceAccount/" + name("operator"),
		"ServiceAccount/" + name("proxy"),
	}
	eq(t, "rendered objects", m.keys(), want)

	op := deployment(t, m, "operator")
	eq(t, "operator replicas", *op.Spec.Replicas, int32(2))
	c := op.Spec.Template.Spec.Containers[0]
	eq(t, "operator image", c.Image, "ghcr.io/kafscale/kafscale-operator:"+appVersion)
	eq(t, "operator pull policy", c.ImagePullPolicy, corev1.PullIfNotPresent)
	eq(t, "leader key", env(t, c, "KAFSCALE_OPERATOR_LEADER_KEY").Value, "/kafscale/operator/leader")
	eq(t, "etcd endpoints unset (managed etcd)", hasEnv(c, "KAFSCALE_OPERATOR_ETCD_ENDPOINTS"), false)
	eq(t, "broker image", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE").Value, "ghcr.io/kafscale/kafscale-broker:"+appVersion)
	eq(t, "helm test image (make images builds it)", get[corev1.Pod](t, m, "Pod", name("test-produce")).Spec.Containers[0].Image, "ghcr.io/kafscale/kafscale-check:"+appVersion)
	eq(t, "broker env ConfigMap", env(t, c, "KAFSCALE_OPERATOR_BROKER_ENV_CONFIGMAP").Value, name("broker-env"))
	eq(t, "watch namespace", env(t, c, "KAFSCALE_OPERATOR_NAMESPACE").ValueFrom.FieldRef.FieldPath, "metadata.namespace")
	eq(t, "metrics port", c.Ports[0].ContainerPort, int32(8080))
	eq(t, "broker defaults", brokerEnv(t, m), map[string]string{
		"KAFSCALE_ACL_ENABLED": "false", "KAFSCALE_PRINCIPAL_SOURCE": "client_id", "KAFSCALE_PROXY_PROTOCOL": "false",
	})

	px := container(t, m, "proxy")
	eq(t, "proxy advertised host", env(t, px, "KAFSCALE_PROXY_ADVERTISED_HOST").Value, name("proxy")+"."+namespace+".svc")
	eq(t, "proxy advertised port", env(t, px, "KAFSCALE_PROXY_ADVERTISED_PORT").Value, "9092")
	eq(t, "proxy etcd (managed etcd of clusterName)", env(t, px, "KAFSCALE_PROXY_ETCD_ENDPOINTS").Value, "http://kafscale-etcd."+namespace+".svc:2379")
	eq(t, "proxy Service type", get[corev1.Service](t, m, "Service", name("proxy")).Spec.Type, corev1.ServiceTypeClusterIP)
	eq(t, "proxy Kafka Service has no metrics port", len(get[corev1.Service](t, m, "Service", name("proxy")).Spec.Ports), 1)
	eq(t, "proxy metrics address", env(t, px, "KAFSCALE_PROXY_METRICS_ADDR").Value, ":9093")
	eq(t, "proxy shutdown grace", env(t, px, "KAFSCALE_PROXY_SHUTDOWN_GRACE_SEC").Value, "25")
	eq(t, "proxy ports", []string{px.Ports[0].Name, px.Ports[1].Name}, []string{"kafka", "metrics"})
	eq(t, "proxy metrics port", px.Ports[1].ContainerPort, int32(9093))
	eq(t, "proxy readiness probe", []string{px.ReadinessProbe.HTTPGet.Path, px.ReadinessProbe.HTTPGet.Port.String()}, []string{"/readyz", "metrics"})
	eq(t, "proxy liveness probe", []string{px.LivenessProbe.HTTPGet.Path, px.LivenessProbe.HTTPGet.Port.String()}, []string{"/healthz", "metrics"})
	eq(t, "proxy termination grace (shutdown grace + 5)", *deployment(t, m, "proxy").Spec.Template.Spec.TerminationGracePeriodSeconds, int64(30))
	pms := get[corev1.Service](t, m, "Service", name("proxy-metrics"))
	eq(t, "proxy metrics Service", []any{pms.Spec.Type, pms.Spec.Ports[0].Name, pms.Spec.Ports[0].Port, pms.Spec.Ports[0].TargetPort.String(), pms.Spec.Selector["app.kubernetes.io/component"]},
		[]any{corev1.ServiceTypeClusterIP, "metrics", int32(9093), "metrics", "proxy"})

	cs := container(t, m, "console")
	eq(t, "console has no login without auth values", hasEnv(cs, "KAFSCALE_UI_USERNAME") || hasEnv(cs, "KAFSCALE_UI_PASSWORD"), false)

	ms := get[corev1.Service](t, m, "Service", name("operator-metrics"))
	eq(t, "metrics Service port", ms.Spec.Ports[0].Port, int32(8080))
	eq(t, "metrics Service selects the operator", ms.Spec.Selector["app.kubernetes.io/component"], "operator")

	for _, crd := range all[apiextensionsv1.CustomResourceDefinition](t, m, "CustomResourceDefinition") {
		eq(t, crd.Name+" keep policy", crd.Annotations["helm.sh/resource-policy"], "keep")
		eq(t, crd.Name+" group", crd.Spec.Group, "kafscale.io")
		eq(t, crd.Name+" version", crd.Spec.Versions[0].Name, "v1alpha1")
		eq(t, crd.Name+" status subresource", crd.Spec.Versions[0].Subresources != nil && crd.Spec.Versions[0].Subresources.Status != nil, true)
		eq(t, crd.Name+" has printer columns", len(crd.Spec.Versions[0].AdditionalPrinterColumns) > 0, true)
	}
}

// allOn turns on every optional template, for tests that need each template to render.
var allOn = values{
	set: map[string]string{
		"console.auth.username":                  "admin",
		"console.auth.password":                  "s3cret-pass",
		"console.ingress.enabled":                "true",
		"metrics.serviceMonitor.enabled":         "true",
		"metrics.prometheusRule.enabled":         "true",
		"networkPolicy.enabled":                  "true",
		"operator.acl.enabled":                   "true",
		"proxy.service.type":                     "LoadBalancer",
		"proxy.advertisedHost":                   "kafka.example.com",
		"proxy.service.loadBalancerSourceRanges": "{10.0.0.0/8}",
	},
	setJSON: map[string]string{"operator.acl.configJson": `"{\"rules\":[]}"`},
}

// Every file under templates/ renders at least one object once its switches are on.
func TestEveryTemplateRenders(t *testing.T) {
	requireHelm(t)
	files, err := filepath.Glob(filepath.Join(chartDir(t), "templates", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := filepath.Glob(filepath.Join(chartDir(t), "templates", "*", "*.yaml"))
	files = append(files, sub...)
	if len(files) < 15 {
		t.Fatalf("found only %d templates", len(files))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(chartDir(t), f)
		if rel == filepath.Join("templates", "validate.yaml") {
			continue // renders nothing by design: it only fails on bad combinations
		}
		t.Run(rel, func(t *testing.T) {
			out, err := helm.RenderTemplateE(t, allOn.options(namespace), chartDir(t), release, []string{rel})
			if err != nil {
				t.Fatal(err)
			}
			if len(parseManifest(t, out)) == 0 {
				t.Fatalf("%s rendered no object", rel)
			}
		})
	}
}

type valueCase struct {
	name  string
	v     values
	check func(t *testing.T, m manifest)
}

// The values DESIGN.md names, one case each, and their effect on the rendered objects.
func TestDesignValues(t *testing.T) {
	cases := []valueCase{
		{"operator.replicaCount", values{set: map[string]string{"operator.replicaCount": "3"}}, func(t *testing.T, m manifest) {
			eq(t, "replicas", *deployment(t, m, "operator").Spec.Replicas, int32(3))
			eq(t, "PDB", get[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget", name("operator")).Spec.MaxUnavailable.IntValue(), 1)
		}},
		{"operator.replicaCount=1 has no PDB", values{set: map[string]string{"operator.replicaCount": "1"}}, func(t *testing.T, m manifest) {
			eq(t, "operator PDB rendered", m.has("PodDisruptionBudget", name("operator")), false)
		}},
		{"operator.etcdSnapshot.* defaults", values{}, func(t *testing.T, m manifest) {
			c := container(t, m, "operator")
			for k, want := range map[string]string{
				"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PREFIX": "etcd-snapshots", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SCHEDULE": "0 * * * *",
				"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_STALE_AFTER_SEC": "7200", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_CREATE_BUCKET": "1",
				"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PROTECT_BUCKET": "0", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SKIP_PREFLIGHT": "0",
			} {
				eq(t, k, env(t, c, k).Value, want)
			}
			for _, k := range []string{"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_S3_ENDPOINT", "KAFSCALE_OPERATOR_ETCD_IMAGE", "KAFSCALE_OPERATOR_ETCD_STORAGE_SIZE", "KAFSCALE_OPERATOR_ETCD_STORAGE_CLASS"} {
				if hasEnv(c, k) {
					t.Errorf("%s set though its value is empty (the operator's default applies)", k)
				}
			}
		}},
		{"operator.etcdSnapshot.* and managedEtcd.*", values{set: map[string]string{
			"operator.etcdSnapshot.bucket": "etcd-backups", "operator.etcdSnapshot.s3Endpoint": "http://minio:9000", "operator.etcdSnapshot.prefix": "snaps",
			"operator.etcdSnapshot.schedule": "*/30 * * * *", "operator.etcdSnapshot.staleAfterSeconds": "5400", "operator.etcdSnapshot.createBucket": "false",
			"operator.etcdSnapshot.protectBucket": "true", "operator.etcdSnapshot.skipPreflight": "true",
			"operator.managedEtcd.image": "registry.local/etcd:v3.6.16", "operator.managedEtcd.storageSize": "20Gi", "operator.managedEtcd.storageClass": "ssd",
		}}, func(t *testing.T, m manifest) {
			c := container(t, m, "operator")
			for k, want := range map[string]string{
				"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET": "etcd-backups", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_S3_ENDPOINT": "http://minio:9000",
				"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PREFIX": "snaps", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SCHEDULE": "*/30 * * * *",
				"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_STALE_AFTER_SEC": "5400", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_CREATE_BUCKET": "0",
				"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PROTECT_BUCKET": "1", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SKIP_PREFLIGHT": "1",
				"KAFSCALE_OPERATOR_ETCD_IMAGE": "registry.local/etcd:v3.6.16", "KAFSCALE_OPERATOR_ETCD_STORAGE_SIZE": "20Gi", "KAFSCALE_OPERATOR_ETCD_STORAGE_CLASS": "ssd",
			} {
				eq(t, k, env(t, c, k).Value, want)
			}
		}},
		{"operator.leaderKey", values{set: map[string]string{"operator.leaderKey": "/prod/kafscale/leader"}}, func(t *testing.T, m manifest) {
			eq(t, "KAFSCALE_OPERATOR_LEADER_KEY", env(t, container(t, m, "operator"), "KAFSCALE_OPERATOR_LEADER_KEY").Value, "/prod/kafscale/leader")
		}},
		{"operator.etcdEndpoints", values{set: map[string]string{"operator.etcdEndpoints": "{http://etcd-0:2379,http://etcd-1:2379}"}}, func(t *testing.T, m manifest) {
			want := "http://etcd-0:2379,http://etcd-1:2379"
			eq(t, "KAFSCALE_OPERATOR_ETCD_ENDPOINTS", env(t, container(t, m, "operator"), "KAFSCALE_OPERATOR_ETCD_ENDPOINTS").Value, want)
			eq(t, "proxy falls back to them", env(t, container(t, m, "proxy"), "KAFSCALE_PROXY_ETCD_ENDPOINTS").Value, want)
			eq(t, "console falls back to them", env(t, container(t, m, "console"), "KAFSCALE_CONSOLE_ETCD_ENDPOINTS").Value, want)
		}},
		{"operator.image.*", values{set: map[string]string{"operator.image.registry": "quay.io", "operator.image.repository": "acme/op", "operator.image.tag": "1.2.3", "operator.image.pullPolicy": "Always"}}, func(t *testing.T, m manifest) {
			c := container(t, m, "operator")
			eq(t, "image", c.Image, "quay.io/acme/op:1.2.3")
			eq(t, "pullPolicy", c.ImagePullPolicy, corev1.PullAlways)
		}},
		{"operator.image.useLatest", values{set: map[string]string{"operator.image.useLatest": "true"}}, func(t *testing.T, m manifest) {
			c := container(t, m, "operator")
			eq(t, "image", c.Image, "ghcr.io/kafscale/kafscale-operator:latest")
			eq(t, "pullPolicy", c.ImagePullPolicy, corev1.PullAlways)
		}},
		{"operator.image.digest", values{set: map[string]string{"operator.image.digest": "sha256:" + strings.Repeat("ab", 32)}}, func(t *testing.T, m manifest) {
			eq(t, "image", container(t, m, "operator").Image, "ghcr.io/kafscale/kafscale-operator:"+appVersion+"@sha256:"+strings.Repeat("ab", 32))
		}},
		{"operator.brokerImage.*", values{set: map[string]string{"operator.brokerImage.repository": "acme/broker", "operator.brokerImage.tag": "2.0.0", "operator.brokerImage.pullPolicy": "Never"}}, func(t *testing.T, m manifest) {
			c := container(t, m, "operator")
			eq(t, "KAFSCALE_OPERATOR_BROKER_IMAGE", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE").Value, "ghcr.io/acme/broker:2.0.0")
			eq(t, "KAFSCALE_OPERATOR_BROKER_IMAGE_PULL_POLICY", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE_PULL_POLICY").Value, "Never")
		}},
		{"operator.brokerImage.useLatest", values{set: map[string]string{"operator.brokerImage.useLatest": "true"}}, func(t *testing.T, m manifest) {
			c := container(t, m, "operator")
			eq(t, "broker image", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE").Value, "ghcr.io/kafscale/kafscale-broker:latest")
			eq(t, "broker pull policy", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE_PULL_POLICY").Value, "Always")
		}},
		{"broker.image.* (alias)", values{set: map[string]string{"broker.image.registry": "registry.local:5000", "broker.image.repository": "kafscale/broker-dev", "broker.image.tag": "dev", "broker.image.pullPolicy": "Always"}}, func(t *testing.T, m manifest) {
			c := container(t, m, "operator")
			eq(t, "broker image", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE").Value, "registry.local:5000/kafscale/broker-dev:dev")
			eq(t, "broker pull policy", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE_PULL_POLICY").Value, "Always")
		}},
		{"broker.image.useLatest (alias)", values{set: map[string]string{"broker.image.useLatest": "true"}}, func(t *testing.T, m manifest) {
			eq(t, "broker image", env(t, container(t, m, "operator"), "KAFSCALE_OPERATOR_BROKER_IMAGE").Value, "ghcr.io/kafscale/kafscale-broker:latest")
		}},
		{"broker.env.*", values{set: map[string]string{"broker.env.KAFSCALE_LOG_LEVEL": "debug", "broker.env.KAFSCALE_CACHE_BYTES": "1073741824"}}, func(t *testing.T, m manifest) {
			e := brokerEnv(t, m)
			eq(t, "KAFSCALE_LOG_LEVEL", e["KAFSCALE_LOG_LEVEL"], "debug")
			eq(t, "KAFSCALE_CACHE_BYTES", e["KAFSCALE_CACHE_BYTES"], "1073741824")
		}},
		{"operator.acl.*", values{set: map[string]string{"operator.acl.enabled": "true"}, setJSON: map[string]string{"operator.acl.configJson": `"{\"rules\":[{\"principal\":\"User:app\",\"operations\":[\"Write\"]}]}"`}}, func(t *testing.T, m manifest) {
			e := brokerEnv(t, m)
			eq(t, "KAFSCALE_ACL_ENABLED", e["KAFSCALE_ACL_ENABLED"], "true")
			eq(t, "KAFSCALE_ACL_CONFIG_JSON", e["KAFSCALE_ACL_CONFIG_JSON"], `{"rules":[{"principal":"User:app","operations":["Write"]}]}`)
		}},
		{"operator.auth.*", values{set: map[string]string{"operator.auth.principalSource": "proxy_addr", "operator.auth.proxyProtocol": "true"}}, func(t *testing.T, m manifest) {
			e := brokerEnv(t, m)
			eq(t, "KAFSCALE_PRINCIPAL_SOURCE", e["KAFSCALE_PRINCIPAL_SOURCE"], "proxy_addr")
			eq(t, "KAFSCALE_PROXY_PROTOCOL", e["KAFSCALE_PROXY_PROTOCOL"], "true")
			eq(t, "proxy sends PROXY headers", env(t, container(t, m, "proxy"), "KAFSCALE_PROXY_PROXY_PROTOCOL").Value, "true")
		}},
		{"console.image.*", values{set: map[string]string{"console.image.repository": "acme/console", "console.image.tag": "9.9.9", "console.image.pullPolicy": "Always"}}, func(t *testing.T, m manifest) {
			c := container(t, m, "console")
			eq(t, "image", c.Image, "ghcr.io/acme/console:9.9.9")
			eq(t, "pullPolicy", c.ImagePullPolicy, corev1.PullAlways)
		}},
		{"console.service.*", values{set: map[string]string{"console.service.type": "NodePort", "console.service.port": "8443", "console.service.annotations.a\\.b/c": "d"}}, func(t *testing.T, m manifest) {
			s := get[corev1.Service](t, m, "Service", name("console"))
			eq(t, "type", s.Spec.Type, corev1.ServiceTypeNodePort)
			eq(t, "port", s.Spec.Ports[0].Port, int32(8443))
			eq(t, "targetPort", s.Spec.Ports[0].TargetPort.String(), "http")
			eq(t, "annotation", s.Annotations["a.b/c"], "d")
		}},
		{"console.ingress.*", values{set: map[string]string{"console.ingress.enabled": "true", "console.ingress.className": "nginx", "console.ingress.annotations.cert-manager\\.io/cluster-issuer": "le"},
			setJSON: map[string]string{"console.ingress.hosts": `[{"host":"console.example.com","paths":[{"path":"/ui","pathType":"Prefix"}]}]`, "console.ingress.tls": `[{"secretName":"console-tls","hosts":["console.example.com"]}]`}}, func(t *testing.T, m manifest) {
			i := get[networkingv1.Ingress](t, m, "Ingress", name("console"))
			eq(t, "class", *i.Spec.IngressClassName, "nginx")
			eq(t, "annotation", i.Annotations["cert-manager.io/cluster-issuer"], "le")
			eq(t, "host", i.Spec.Rules[0].Host, "console.example.com")
			p := i.Spec.Rules[0].HTTP.Paths[0]
			eq(t, "path", p.Path, "/ui")
			eq(t, "backend", p.Backend.Service.Name, name("console"))
			eq(t, "backend port", p.Backend.Service.Port.Name, "http")
			eq(t, "tls", i.Spec.TLS[0].SecretName, "console-tls")
		}},
		{"console.auth.username/password", values{set: map[string]string{"console.auth.username": "admin", "console.auth.password": "pa55-word"}}, func(t *testing.T, m manifest) {
			s := get[corev1.Secret](t, m, "Secret", name("console"))
			eq(t, "secret username", string(s.Data["username"]), "admin")
			eq(t, "secret password", string(s.Data["password"]), "pa55-word")
			c := container(t, m, "console")
			for key, want := range map[string]string{"KAFSCALE_UI_USERNAME": "username", "KAFSCALE_UI_PASSWORD": "password"} {
				e := env(t, c, key)
				eq(t, key+" literal", e.Value, "")
				eq(t, key+" secret", e.ValueFrom.SecretKeyRef.Name, name("console"))
				eq(t, key+" key", e.ValueFrom.SecretKeyRef.Key, want)
			}
			eq(t, "checksum annotation", len(deployment(t, m, "console").Spec.Template.Annotations["checksum/secret"]), 64)
		}},
		{"console.auth.existingSecret", values{set: map[string]string{"console.auth.existingSecret": "ops-login", "console.auth.usernameKey": "u", "console.auth.passwordKey": "p"}}, func(t *testing.T, m manifest) {
			eq(t, "chart Secret rendered", m.has("Secret", name("console")), false)
			c := container(t, m, "console")
			eq(t, "username ref", *env(t, c, "KAFSCALE_UI_USERNAME").ValueFrom.SecretKeyRef, corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "ops-login"}, Key: "u"})
			eq(t, "password ref", *env(t, c, "KAFSCALE_UI_PASSWORD").ValueFrom.SecretKeyRef, corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "ops-login"}, Key: "p"})
		}},
		{"console.enabled=false", values{set: map[string]string{"console.enabled": "false"}}, func(t *testing.T, m manifest) {
			for _, k := range m.keys() {
				if strings.Contains(k, "console") {
					t.Errorf("%s rendered with the console off", k)
				}
			}
		}},
		{"proxy.enabled=false", values{set: map[string]string{"proxy.enabled": "false"}}, func(t *testing.T, m manifest) {
			for _, k := range m.keys() {
				if strings.Contains(k, "proxy") || strings.HasPrefix(k, "Pod/") {
					t.Errorf("%s rendered with the proxy off", k)
				}
			}
		}},
		{"proxy.replicaCount", values{set: map[string]string{"proxy.replicaCount": "4"}}, func(t *testing.T, m manifest) {
			eq(t, "replicas", *deployment(t, m, "proxy").Spec.Replicas, int32(4))
			eq(t, "PDB selects the proxy", get[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget", name("proxy")).Spec.Selector.MatchLabels["app.kubernetes.io/component"], "proxy")
		}},
		{"proxy.service.* LoadBalancer", values{set: map[string]string{"proxy.service.type": "LoadBalancer", "proxy.service.port": "19092", "proxy.advertisedHost": "kafka.example.com",
			"proxy.service.annotations.service\\.beta\\.kubernetes\\.io/aws-load-balancer-type": "nlb", "proxy.service.loadBalancerSourceRanges": "{10.0.0.0/8,192.168.1.0/24}", "proxy.service.externalTrafficPolicy": "Local", "proxy.service.nodePort": "30092"}}, func(t *testing.T, m manifest) {
			s := get[corev1.Service](t, m, "Service", name("proxy"))
			eq(t, "type", s.Spec.Type, corev1.ServiceTypeLoadBalancer)
			eq(t, "port", s.Spec.Ports[0].Port, int32(19092))
			eq(t, "nodePort", s.Spec.Ports[0].NodePort, int32(30092))
			eq(t, "annotation", s.Annotations["service.beta.kubernetes.io/aws-load-balancer-type"], "nlb")
			eq(t, "source ranges", s.Spec.LoadBalancerSourceRanges, []string{"10.0.0.0/8", "192.168.1.0/24"})
			eq(t, "externalTrafficPolicy", s.Spec.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicyLocal)
			eq(t, "advertised port follows the Service port", env(t, container(t, m, "proxy"), "KAFSCALE_PROXY_ADVERTISED_PORT").Value, "19092")
		}},
		{"proxy.advertisedHost/advertisedPort", values{set: map[string]string{"proxy.advertisedHost": "kafka.internal.example.com", "proxy.advertisedPort": "443"}}, func(t *testing.T, m manifest) {
			c := container(t, m, "proxy")
			eq(t, "KAFSCALE_PROXY_ADVERTISED_HOST", env(t, c, "KAFSCALE_PROXY_ADVERTISED_HOST").Value, "kafka.internal.example.com")
			eq(t, "KAFSCALE_PROXY_ADVERTISED_PORT", env(t, c, "KAFSCALE_PROXY_ADVERTISED_PORT").Value, "443")
		}},
		{"proxy.etcdEndpoints", values{set: map[string]string{"proxy.etcdEndpoints": "{https://etcd.example.com:2379}", "operator.etcdEndpoints": "{http://other:2379}"}}, func(t *testing.T, m manifest) {
			eq(t, "KAFSCALE_PROXY_ETCD_ENDPOINTS", env(t, container(t, m, "proxy"), "KAFSCALE_PROXY_ETCD_ENDPOINTS").Value, "https://etcd.example.com:2379")
		}},
		{"console.etcdEndpoints", values{set: map[string]string{"console.etcdEndpoints": "{http://ro-etcd:2379}"}}, func(t *testing.T, m manifest) {
			eq(t, "KAFSCALE_CONSOLE_ETCD_ENDPOINTS", env(t, container(t, m, "console"), "KAFSCALE_CONSOLE_ETCD_ENDPOINTS").Value, "http://ro-etcd:2379")
		}},
		{"clusterName", values{set: map[string]string{"clusterName": "orders"}}, func(t *testing.T, m manifest) {
			c := container(t, m, "proxy")
			eq(t, "KAFSCALE_PROXY_CLUSTER", env(t, c, "KAFSCALE_PROXY_CLUSTER").Value, "orders")
			eq(t, "managed etcd of that cluster", env(t, c, "KAFSCALE_PROXY_ETCD_ENDPOINTS").Value, "http://orders-etcd."+namespace+".svc:2379")
			eq(t, "KAFSCALE_CONSOLE_CLUSTER", env(t, container(t, m, "console"), "KAFSCALE_CONSOLE_CLUSTER").Value, "orders")
		}},
		{"imagePullSecrets", values{setJSON: map[string]string{"imagePullSecrets": `[{"name":"regcred"},{"name":"mirror"}]`}}, func(t *testing.T, m manifest) {
			for where, spec := range podSpecs(t, m) {
				eq(t, where+" imagePullSecrets", spec.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "mirror"}})
			}
			eq(t, "passed on to brokers", env(t, container(t, m, "operator"), "KAFSCALE_OPERATOR_IMAGE_PULL_SECRETS").Value, "regcred,mirror")
		}},
		{"global.imageRegistry", values{set: map[string]string{"global.imageRegistry": "mirror.example.com"}}, func(t *testing.T, m manifest) {
			for where, spec := range podSpecs(t, m) {
				if !strings.HasPrefix(spec.Containers[0].Image, "mirror.example.com/") {
					t.Errorf("%s image %s ignores global.imageRegistry", where, spec.Containers[0].Image)
				}
			}
			eq(t, "broker image", env(t, container(t, m, "operator"), "KAFSCALE_OPERATOR_BROKER_IMAGE").Value, "mirror.example.com/kafscale/kafscale-broker:"+appVersion)
		}},
		{"commonLabels", values{set: map[string]string{"commonLabels.team": "streaming"}}, func(t *testing.T, m manifest) {
			for _, o := range m.objects(t) {
				eq(t, o.GetKind()+"/"+o.GetName()+" label", o.GetLabels()["team"], "streaming")
			}
			eq(t, "pod label", deployment(t, m, "proxy").Spec.Template.Labels["team"], "streaming")
		}},
		{"nameOverride", values{set: map[string]string{"nameOverride": "ks2"}}, func(t *testing.T, m manifest) {
			eq(t, "renamed operator", m.has("Deployment", release+"-ks2-operator"), true)
		}},
		{"fullnameOverride", values{set: map[string]string{"fullnameOverride": "streams"}}, func(t *testing.T, m manifest) {
			eq(t, "renamed proxy", m.has("Deployment", "streams-proxy"), true)
			eq(t, "metrics Service", m.has("Service", "streams-operator-metrics"), true)
		}},
		{"crds.enabled=false", values{set: map[string]string{"crds.enabled": "false"}}, func(t *testing.T, m manifest) {
			eq(t, "CRDs", len(all[apiextensionsv1.CustomResourceDefinition](t, m, "CustomResourceDefinition")), 0)
		}},
		{"crds.keep=false", values{set: map[string]string{"crds.keep": "false"}}, func(t *testing.T, m manifest) {
			for _, crd := range all[apiextensionsv1.CustomResourceDefinition](t, m, "CustomResourceDefinition") {
				eq(t, crd.Name+" keep annotation", crd.Annotations["helm.sh/resource-policy"], "")
			}
		}},
		{"operator.rbac.create=false", values{set: map[string]string{"operator.rbac.create": "false"}}, func(t *testing.T, m manifest) {
			eq(t, "Role", m.has("Role", name("operator")), false)
			eq(t, "RoleBinding", m.has("RoleBinding", name("operator")), false)
		}},
		{"pdb.enabled=false", values{set: map[string]string{"operator.pdb.enabled": "false", "proxy.pdb.enabled": "false"}}, func(t *testing.T, m manifest) {
			eq(t, "PDBs", len(all[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget")), 0)
		}},
		{"pdb.maxUnavailable", values{set: map[string]string{"proxy.pdb.maxUnavailable": "50%"}}, func(t *testing.T, m manifest) {
			eq(t, "maxUnavailable", get[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget", name("proxy")).Spec.MaxUnavailable.String(), "50%")
		}},
		{"metrics.service.*", values{set: map[string]string{"metrics.service.port": "9100"}, setString: map[string]string{"metrics.service.annotations.prometheus\\.io/scrape": "true"}}, func(t *testing.T, m manifest) {
			s := get[corev1.Service](t, m, "Service", name("operator-metrics"))
			eq(t, "port", s.Spec.Ports[0].Port, int32(9100))
			eq(t, "targetPort", s.Spec.Ports[0].TargetPort.String(), "metrics")
			eq(t, "annotation", s.Annotations["prometheus.io/scrape"], "true")
		}},
		{"metrics.service.enabled=false", values{set: map[string]string{"metrics.service.enabled": "false"}}, func(t *testing.T, m manifest) {
			eq(t, "metrics Service", m.has("Service", name("operator-metrics")), false)
		}},
		{"metrics.serviceMonitor.*", values{set: map[string]string{"metrics.serviceMonitor.enabled": "true", "metrics.serviceMonitor.labels.release": "prom", "metrics.serviceMonitor.interval": "15s", "metrics.serviceMonitor.scrapeTimeout": "5s"}}, func(t *testing.T, m manifest) {
			op := get[monitoringv1.ServiceMonitor](t, m, "ServiceMonitor", name("operator"))
			eq(t, "label", op.Labels["release"], "prom")
			eq(t, "selector", op.Spec.Selector.MatchLabels["app.kubernetes.io/component"], "operator")
			eq(t, "port", op.Spec.Endpoints[0].Port, "metrics")
			eq(t, "interval", string(op.Spec.Endpoints[0].Interval), "15s")
			eq(t, "timeout", string(op.Spec.Endpoints[0].ScrapeTimeout), "5s")
			eq(t, "namespace", op.Spec.NamespaceSelector.MatchNames, []string{namespace})
			br := get[monitoringv1.ServiceMonitor](t, m, "ServiceMonitor", name("broker"))
			eq(t, "broker selector", br.Spec.Selector.MatchLabels, map[string]string{"app.kubernetes.io/part-of": "kafscale", "app.kubernetes.io/component": "broker"})
			eq(t, "broker label", br.Labels["release"], "prom")
			px := get[monitoringv1.ServiceMonitor](t, m, "ServiceMonitor", name("proxy"))
			eq(t, "proxy selector", px.Spec.Selector.MatchLabels["app.kubernetes.io/component"], "proxy")
			eq(t, "proxy port", px.Spec.Endpoints[0].Port, "metrics")
			eq(t, "proxy interval", string(px.Spec.Endpoints[0].Interval), "15s")
			eq(t, "proxy label", px.Labels["release"], "prom")
			eq(t, "PrometheusRule off by its own switch", m.has("PrometheusRule", name("operator")), false)
		}},
		{"metrics.serviceMonitor.brokers=false", values{set: map[string]string{"metrics.serviceMonitor.enabled": "true", "metrics.serviceMonitor.brokers": "false"}}, func(t *testing.T, m manifest) {
			eq(t, "ServiceMonitors", len(all[monitoringv1.ServiceMonitor](t, m, "ServiceMonitor")), 2)
			eq(t, "broker ServiceMonitor", m.has("ServiceMonitor", name("broker")), false)
		}},
		{"metrics.serviceMonitor.proxy=false", values{set: map[string]string{"metrics.serviceMonitor.enabled": "true", "metrics.serviceMonitor.proxy": "false"}}, func(t *testing.T, m manifest) {
			eq(t, "proxy ServiceMonitor", m.has("ServiceMonitor", name("proxy")), false)
			eq(t, "ServiceMonitors", len(all[monitoringv1.ServiceMonitor](t, m, "ServiceMonitor")), 2)
		}},
		{"proxy.metrics.*", values{set: map[string]string{"proxy.metrics.port": "9100", "proxy.shutdownGraceSeconds": "40"}}, func(t *testing.T, m manifest) {
			px := container(t, m, "proxy")
			eq(t, "metrics address", env(t, px, "KAFSCALE_PROXY_METRICS_ADDR").Value, ":9100")
			eq(t, "metrics port", px.Ports[1].ContainerPort, int32(9100))
			eq(t, "metrics Service port", get[corev1.Service](t, m, "Service", name("proxy-metrics")).Spec.Ports[0].Port, int32(9100))
			eq(t, "grace", env(t, px, "KAFSCALE_PROXY_SHUTDOWN_GRACE_SEC").Value, "40")
			eq(t, "termination grace", *deployment(t, m, "proxy").Spec.Template.Spec.TerminationGracePeriodSeconds, int64(45))
		}},
		{"proxy.metrics.service.enabled=false", values{set: map[string]string{"proxy.metrics.service.enabled": "false"}}, func(t *testing.T, m manifest) {
			eq(t, "proxy metrics Service", m.has("Service", name("proxy-metrics")), false)
			eq(t, "probes still use the metrics port", container(t, m, "proxy").ReadinessProbe.HTTPGet.Port.String(), "metrics")
		}},
		{"metrics.prometheusRule.crrAlerts", values{set: map[string]string{"metrics.prometheusRule.enabled": "true", "metrics.prometheusRule.crrAlerts": "true"}}, func(t *testing.T, m manifest) {
			// The operations guide's "Monitor CRR" thresholds, on the series it names.
			want := map[string][]string{
				"KafscaleS3ReplicaFallbacks": {"kafscale_s3_replica_fallback_total", "[5m]", "> 0.1", "10m"},
				"KafscaleS3ReadLatencyHigh":  {"histogram_quantile(0.99", "kafscale_s3_read_latency_ms_bucket", "> 200", "10m"},
				"KafscaleS3ReplicaMissRatio": {"kafscale_s3_replica_miss_ratio", "> 0.05", "15m"},
			}
			r := get[monitoringv1.PrometheusRule](t, m, "PrometheusRule", name("operator"))
			for _, g := range r.Spec.Groups {
				for _, rule := range g.Rules {
					parts, ok := want[rule.Alert]
					if !ok {
						continue
					}
					delete(want, rule.Alert)
					text := rule.Expr.String() + " for " + string(*rule.For)
					for _, p := range parts {
						if !strings.Contains(text, p) {
							t.Errorf("%s: %q lacks %q", rule.Alert, text, p)
						}
					}
					if !strings.Contains(rule.Expr.String(), `namespace="`+namespace+`"`) {
						t.Errorf("%s is not scoped to the release namespace", rule.Alert)
					}
				}
			}
			if len(want) > 0 {
				t.Errorf("CRR alerts missing: %v", want)
			}
		}},
		{"metrics.prometheusRule.crrAlerts off by default", values{set: map[string]string{"metrics.prometheusRule.enabled": "true"}}, func(t *testing.T, m manifest) {
			r := get[monitoringv1.PrometheusRule](t, m, "PrometheusRule", name("operator"))
			for _, g := range r.Spec.Groups {
				if g.Name == "kafscale.crr" {
					t.Errorf("CRR alerts rendered without metrics.prometheusRule.crrAlerts")
				}
			}
		}},
		{"metrics.prometheusRule.*", values{set: map[string]string{"metrics.prometheusRule.enabled": "true", "metrics.prometheusRule.labels.release": "prom", "metrics.prometheusRule.alertLabels.team": "streaming", "operator.etcdSnapshot.staleAfterSeconds": "3600", "metrics.prometheusRule.snapshotNeverSucceededSeconds": "7200"}}, func(t *testing.T, m manifest) {
			r := get[monitoringv1.PrometheusRule](t, m, "PrometheusRule", name("operator"))
			eq(t, "label", r.Labels["release"], "prom")
			alerts := map[string]monitoringv1.Rule{}
			for _, g := range r.Spec.Groups {
				for _, rule := range g.Rules {
					alerts[rule.Alert] = rule
					eq(t, rule.Alert+" team label", rule.Labels["team"], "streaming")
					if !strings.Contains(rule.Expr.String(), `namespace="`+namespace+`"`) {
						t.Errorf("%s is not scoped to the release namespace: %s", rule.Alert, rule.Expr.String())
					}
				}
			}
			for _, a := range []string{"KafscaleSnapshotAccessFailed", "KafscaleSnapshotStale", "KafscaleSnapshotNeverSucceeded", "KafscaleOperatorDown", "KafscaleOperatorNoLeader", "KafscaleOperatorReconcileErrors", "KafscaleBrokersNotReady", "KafscaleBrokerS3Unavailable", "KafscaleBrokerS3Degraded"} {
				if _, ok := alerts[a]; !ok {
					t.Errorf("alert %s missing", a)
				}
			}
			// One threshold: the operator's environment decides the series the alert reads, and
			// the alert's description quotes the same value.
			stale := alerts["KafscaleSnapshotStale"]
			eq(t, "stale alert expression", stale.Expr.String(), `kafscale_operator_etcd_snapshot_stale{namespace="`+namespace+`"} == 1`)
			eq(t, "operator's stale threshold", env(t, container(t, m, "operator"), "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_STALE_AFTER_SEC").Value, "3600")
			eq(t, "console's stale threshold", env(t, container(t, m, "console"), "KAFSCALE_CONSOLE_SNAPSHOT_STALE_SEC").Value, "3600")
			if !strings.Contains(stale.Annotations["description"], "older than 3600 seconds") {
				t.Errorf("stale alert description does not quote the threshold: %q", stale.Annotations["description"])
			}
			eq(t, "never-succeeded for", string(*alerts["KafscaleSnapshotNeverSucceeded"].For), "7200s")
			eq(t, "ServiceMonitor off by its own switch", m.has("ServiceMonitor", name("operator")), false)
		}},
		{"networkPolicy.*", values{set: map[string]string{"networkPolicy.enabled": "true"}, setJSON: map[string]string{"networkPolicy.metricsFrom": `[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]`, "networkPolicy.consoleFrom": `[{"podSelector":{"matchLabels":{"app":"oauth2-proxy"}}}]`}}, func(t *testing.T, m manifest) {
			op := get[networkingv1.NetworkPolicy](t, m, "NetworkPolicy", name("operator"))
			eq(t, "operator metrics from", op.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"], "monitoring")
			eq(t, "operator port", op.Spec.Ingress[0].Ports[0].Port.String(), "metrics")
			eq(t, "the console may read operator metrics", op.Spec.Ingress[0].From[1].PodSelector.MatchLabels["app.kubernetes.io/component"], "console")
			px := get[networkingv1.NetworkPolicy](t, m, "NetworkPolicy", name("proxy"))
			eq(t, "proxy from anyone", len(px.Spec.Ingress[0].From), 0)
			eq(t, "proxy port", px.Spec.Ingress[0].Ports[0].Port.String(), "kafka")
			eq(t, "proxy metrics port", px.Spec.Ingress[1].Ports[0].Port.String(), "metrics")
			eq(t, "proxy metrics from", px.Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"], "monitoring")
			cs := get[networkingv1.NetworkPolicy](t, m, "NetworkPolicy", name("console"))
			eq(t, "console from", cs.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app"], "oauth2-proxy")
			eq(t, "console selects console pods", cs.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"], "console")
		}},
		{"proxy.internalListener.*", values{set: map[string]string{"proxy.internalListener.port": "19094"}}, func(t *testing.T, m manifest) {
			c := container(t, m, "proxy")
			eq(t, "listen", env(t, c, "KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR").Value, ":19094")
			eq(t, "advertised host", env(t, c, "KAFSCALE_PROXY_INTERNAL_ADVERTISED_HOST").Value, name("proxy-internal")+"."+namespace+".svc")
			eq(t, "advertised port", env(t, c, "KAFSCALE_PROXY_INTERNAL_ADVERTISED_PORT").Value, "19094")
			s := get[corev1.Service](t, m, "Service", name("proxy-internal"))
			eq(t, "Service", []any{s.Spec.Type, s.Spec.Ports[0].Port, s.Spec.Ports[0].TargetPort.String()}, []any{corev1.ServiceTypeClusterIP, int32(19094), "kafka-internal"})
			p := get[corev1.Pod](t, m, "Pod", name("test-produce"))
			eq(t, "helm test bootstrap", p.Spec.Containers[0].Args[1:3], []string{"-bootstrap", name("proxy-internal") + ":19094"})
			off := render(t, values{set: map[string]string{"proxy.internalListener.enabled": "false"}})
			if off.has("Service", name("proxy-internal")) {
				t.Error("the internal Service is rendered with the listener off")
			}
			p = get[corev1.Pod](t, off, "Pod", name("test-produce"))
			eq(t, "helm test bootstrap without it", p.Spec.Containers[0].Args[1:3], []string{"-bootstrap", name("proxy") + ":9092"})
			// helm upgrade --reuse-values from a release older than the key renders with no
			// proxy.internalListener at all (null removes it): the listener is off, no error.
			gone := render(t, values{set: map[string]string{"proxy.internalListener": "null"}})
			if gone.has("Service", name("proxy-internal")) {
				t.Error("the internal Service is rendered without proxy.internalListener")
			}
			eq(t, "no internal listener without its values", envNames(container(t, gone, "proxy")), envNames(container(t, off, "proxy")))
		}},
		{"tests.*", values{set: map[string]string{"tests.image.repository": "acme/check", "tests.image.tag": "1.7.0", "tests.topic": "smoke", "tests.timeoutSeconds": "30"}}, func(t *testing.T, m manifest) {
			p := get[corev1.Pod](t, m, "Pod", name("test-produce"))
			eq(t, "hook", p.Annotations["helm.sh/hook"], "test")
			eq(t, "image", p.Spec.Containers[0].Image, "ghcr.io/acme/check:1.7.0")
			eq(t, "no command: the image's entrypoint is the check binary", len(p.Spec.Containers[0].Command), 0)
			eq(t, "produce args: the internal listener", p.Spec.Containers[0].Args[:5], []string{"produce", "-bootstrap", name("proxy-internal") + ":9094", "-timeout", "30s"})
			eq(t, "produce topic", p.Spec.Containers[0].Args[5:7], []string{"-topic", "smoke"})
			c := get[corev1.Pod](t, m, "Pod", name("test-consume"))
			eq(t, "consume args", c.Spec.Containers[0].Args[0], "consume")
			eq(t, "same record", c.Spec.Containers[0].Args[len(c.Spec.Containers[0].Args)-1], p.Spec.Containers[0].Args[len(p.Spec.Containers[0].Args)-1])
			md := get[corev1.Pod](t, m, "Pod", name("test-metadata"))
			eq(t, "metadata checks the internal listener's advertised endpoint", md.Spec.Containers[0].Args[len(md.Spec.Containers[0].Args)-2:], []string{"-advertised", name("proxy-internal") + "." + namespace + ".svc:9094"})
			eq(t, "order", []string{md.Annotations["helm.sh/hook-weight"], p.Annotations["helm.sh/hook-weight"], c.Annotations["helm.sh/hook-weight"]}, []string{"1", "2", "3"})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, render(t, tc.v))
		})
	}
}

// The pod knobs every component shares: same shape for operator, proxy and console.
func TestPodKnobsPerComponent(t *testing.T) {
	for _, comp := range []string{"operator", "proxy", "console"} {
		t.Run(comp, func(t *testing.T) {
			v := values{
				set: map[string]string{
					comp + ".priorityClassName":                                         "kafscale-critical",
					comp + ".nodeSelector.pool":                                         "streaming",
					comp + ".podAnnotations.example\\.com/a":                            "b",
					comp + ".podLabels.tier":                                            "data",
					comp + ".serviceAccount.name":                                       "custom-sa",
					comp + ".serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn": "arn:aws:iam::1:role/x",
					comp + ".resources.limits.cpu":                                      "2",
				},
				setJSON: map[string]string{
					comp + ".tolerations":               `[{"key":"dedicated","operator":"Equal","value":"kafka","effect":"NoSchedule"}]`,
					comp + ".affinity":                  `{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"arch","operator":"In","values":["arm64"]}]}]}}}`,
					comp + ".topologySpreadConstraints": `[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule"}]`,
					comp + ".extraEnv":                  `[{"name":"KAFSCALE_LOG_LEVEL","value":"debug"}]`,
					comp + ".extraVolumes":              `[{"name":"ca","configMap":{"name":"corp-ca"}}]`,
					comp + ".extraVolumeMounts":         `[{"name":"ca","mountPath":"/etc/ssl/corp","readOnly":true}]`,
					comp + ".podSecurityContext":        `{"runAsNonRoot":true,"runAsUser":1000,"seccompProfile":{"type":"RuntimeDefault"}}`,
				},
			}
			m := render(t, v)
			d := deployment(t, m, comp)
			s := d.Spec.Template.Spec
			c := s.Containers[0]
			eq(t, "priorityClassName", s.PriorityClassName, "kafscale-critical")
			eq(t, "nodeSelector", s.NodeSelector, map[string]string{"pool": "streaming"})
			eq(t, "tolerations", s.Tolerations[0].Value, "kafka")
			eq(t, "affinity", s.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Values, []string{"arm64"})
			eq(t, "spread topologyKey", s.TopologySpreadConstraints[0].TopologyKey, "topology.kubernetes.io/zone")
			eq(t, "spread selector defaults to the component", s.TopologySpreadConstraints[0].LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels)
			eq(t, "pod annotation", d.Spec.Template.Annotations["example.com/a"], "b")
			eq(t, "pod label", d.Spec.Template.Labels["tier"], "data")
			eq(t, "selector unaffected by pod labels", d.Spec.Selector.MatchLabels["tier"], "")
			eq(t, "extraEnv", env(t, c, "KAFSCALE_LOG_LEVEL").Value, "debug")
			eq(t, "extraVolumes", s.Volumes[len(s.Volumes)-1].ConfigMap.Name, "corp-ca")
			eq(t, "extraVolumeMounts", c.VolumeMounts[len(c.VolumeMounts)-1].MountPath, "/etc/ssl/corp")
			eq(t, "podSecurityContext", *s.SecurityContext.RunAsUser, int64(1000))
			eq(t, "resources", c.Resources.Limits.Cpu().String(), "2")
			eq(t, "serviceAccountName", s.ServiceAccountName, "custom-sa")
			sa := get[corev1.ServiceAccount](t, m, "ServiceAccount", "custom-sa")
			eq(t, "serviceAccount annotation", sa.Annotations["eks.amazonaws.com/role-arn"], "arn:aws:iam::1:role/x")
			if comp == "operator" {
				rb := get[rbacv1.RoleBinding](t, m, "RoleBinding", name("operator"))
				eq(t, "RoleBinding subject", rb.Subjects[0].Name, "custom-sa")
			}

			m = render(t, values{set: map[string]string{comp + ".serviceAccount.create": "false"}})
			eq(t, "no ServiceAccount rendered", m.has("ServiceAccount", name(comp)), false)
			eq(t, "default ServiceAccount used", deployment(t, m, comp).Spec.Template.Spec.ServiceAccountName, "default")
		})
	}
}

// Only the operator talks to the Kubernetes API; its Role is namespaced and limited to its
// CRDs, Secrets (read), and the objects it owns.
func TestOperatorRBACIsNamespacedAndMinimal(t *testing.T) {
	m := render(t, values{})
	role := get[rbacv1.Role](t, m, "Role", name("operator"))
	eq(t, "Role namespace", role.Namespace, namespace)
	allowed := map[string][]string{
		"kafscale.io":         {"kafscaleclusters", "kafscaletopics", "kafscaleclusters/status", "kafscaletopics/status", "kafscaleclusters/finalizers", "kafscaletopics/finalizers"},
		"":                    {"secrets", "services", "configmaps", "pods", "pods/status", "events"},
		"apps":                {"deployments", "statefulsets"},
		"policy":              {"poddisruptionbudgets"},
		"autoscaling":         {"horizontalpodautoscalers"},
		"batch":               {"cronjobs", "jobs"},
		"events.k8s.io":       {"events"},
		"coordination.k8s.io": {"leases"},
	}
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				if !slices.Contains(allowed[g], res) {
					t.Errorf("Role grants %q in group %q", res, g)
				}
			}
		}
		if slices.Contains(r.Resources, "secrets") && !reflect.DeepEqual(r.Verbs, []string{"get", "list", "watch"}) {
			t.Errorf("Secrets must be read-only, got %v", r.Verbs)
		}
		// Pods are never created by the operator: it reads them, patches the pod-deletion-cost
		// annotation on the brokers a scale-down drained, and deletes such a pod when the
		// scale-down is undone.
		if slices.Contains(r.Resources, "pods") && !reflect.DeepEqual(r.Verbs, []string{"get", "list", "watch", "patch", "delete"}) {
			t.Errorf("pods must be get/list/watch/patch/delete, got %v", r.Verbs)
		}
		// Pod status only to set the broker pods' readiness gate (kafscale.io/drain-turn).
		if slices.Contains(r.Resources, "pods/status") && !reflect.DeepEqual(r.Verbs, []string{"patch"}) {
			t.Errorf("pods/status must be patch only, got %v", r.Verbs)
		}
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") {
			t.Errorf("wildcard rule %+v", r)
		}
		if slices.Contains(r.Resources, "leases") && len(r.ResourceNames) == 0 && !reflect.DeepEqual(r.Verbs, []string{"create"}) {
			t.Errorf("leases beyond the operator's own may only be created, got %+v", r)
		}
	}
	for where, spec := range podSpecs(t, m) {
		mounts := spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken
		eq(t, where+" mounts a token", mounts, strings.HasSuffix(where, name("operator")))
		// Service links would add KAFSCALE_<SERVICE>_PORT… variables the binaries report
		// as unknown settings.
		eq(t, where+" has service links", spec.EnableServiceLinks == nil || *spec.EnableServiceLinks, false)
	}
}

// shapes are the values every pod-wide property is checked under: the defaults, each ci
// values file and everything switched on.
func shapes(t testing.TB) map[string]values {
	files, err := filepath.Glob(filepath.Join(chartDir(t), "ci", "*-values.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("ci values files: %v %v", files, err)
	}
	s := map[string]values{"defaults": {}, "everything on": allOn}
	for _, f := range files {
		s["ci/"+filepath.Base(f)] = values{files: []string{f}}
	}
	return s
}

// Restricted Pod Security Standard for every pod the chart renders, in every shape.
func TestPodsMeetRestrictedPodSecurityStandard(t *testing.T) {
	for shape, v := range shapes(t) {
		t.Run(shape, func(t *testing.T) {
			m := render(t, v)
			specs := podSpecs(t, m)
			if len(specs) == 0 {
				t.Fatal("no pods rendered")
			}
			for where, s := range specs {
				restricted(t, where, s)
			}
		})
	}
}

func restricted(t *testing.T, where string, s corev1.PodSpec) {
	t.Helper()
	psc := s.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile is not RuntimeDefault", where)
	}
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod runAsNonRoot is not true", where)
	}
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		t.Errorf("%s: runs as root", where)
	}
	if s.HostNetwork || s.HostPID || s.HostIPC {
		t.Errorf("%s: uses host namespaces", where)
	}
	for _, v := range s.Volumes {
		if v.HostPath != nil {
			t.Errorf("%s: hostPath volume %s", where, v.Name)
		}
	}
	for _, c := range append(append([]corev1.Container{}, s.InitContainers...), s.Containers...) {
		sc := c.SecurityContext
		id := where + "/" + c.Name
		if sc == nil {
			t.Errorf("%s: no securityContext", id)
			continue
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", id)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", id)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities must drop ALL and add none: %+v", id, sc.Capabilities)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: root filesystem is writable", id)
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				t.Errorf("%s: hostPort %d", id, p.HostPort)
			}
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: memory request and limit must be set", id)
		}
	}
}

// With an existing Secret named, no credential may reach the rendered objects as a literal;
// with chart-made Secrets the password appears only base64-encoded in the Secret.
func TestSecretsNeverRenderedIntoEnvLiterals(t *testing.T) {
	const password = "do-not-leak-Pa55"
	for _, tc := range []struct {
		name       string
		v          values
		wantSecret bool
	}{
		{"existing Secret", values{files: []string{filepath.Join(chartDir(t), "ci", "existing-secrets-values.yaml")}}, false},
		{"chart-made Secret", values{set: map[string]string{"console.auth.username": "admin", "console.auth.password": password}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := render(t, tc.v)
			eq(t, "Secret rendered", m.has("Secret", name("console")), tc.wantSecret)
			for where, spec := range podSpecs(t, m) {
				for _, c := range spec.Containers {
					for _, e := range c.Env {
						if strings.Contains(e.Name, "PASSWORD") || strings.Contains(e.Name, "USERNAME") {
							if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
								t.Errorf("%s: %s is not taken from a Secret: %+v", where, e.Name, e)
							}
						}
					}
				}
			}
			for _, k := range m.keys() {
				if strings.HasPrefix(k, "Secret/") {
					continue
				}
				if strings.Contains(m[k], password) {
					t.Errorf("%s contains the password in clear", k)
				}
			}
			if !tc.wantSecret {
				c := container(t, m, "console")
				eq(t, "existing Secret name", env(t, c, "KAFSCALE_UI_PASSWORD").ValueFrom.SecretKeyRef.Name, "kafscale-console-login")
				eq(t, "existing Secret key", env(t, c, "KAFSCALE_UI_PASSWORD").ValueFrom.SecretKeyRef.Key, "pass")
			}
		})
	}
}

// Pods roll when what the chart renders for them changes, and only then.
func TestChecksumAnnotationsFollowRenderedInputs(t *testing.T) {
	sum := func(v values, component, key string) string {
		return deployment(t, render(t, v), component).Spec.Template.Annotations[key]
	}
	login := func(pw string) values {
		return values{set: map[string]string{"console.auth.username": "admin", "console.auth.password": pw}}
	}
	a, b := sum(login("one"), "console", "checksum/secret"), sum(login("two"), "console", "checksum/secret")
	if a == "" || a == b {
		t.Errorf("console checksum does not follow the password: %q %q", a, b)
	}
	eq(t, "same input, same checksum", sum(login("one"), "console", "checksum/secret"), a)

	base := sum(values{}, "operator", "checksum/broker-env")
	changed := sum(values{set: map[string]string{"broker.env.KAFSCALE_LOG_LEVEL": "debug"}}, "operator", "checksum/broker-env")
	if base == "" || base == changed {
		t.Errorf("operator checksum does not follow the broker environment: %q %q", base, changed)
	}
	eq(t, "unrelated change keeps the checksum", sum(values{set: map[string]string{"proxy.replicaCount": "5"}}, "operator", "checksum/broker-env"), base)
}

// Every environment variable the chart sets is listed in docs/runtime-settings.md.
func TestEveryEnvVarIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(repoPath(t, "docs", "runtime-settings.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for shape, v := range shapes(t) {
		m := render(t, v)
		for where, spec := range podSpecs(t, m) {
			if strings.HasPrefix(where, "Pod/") {
				continue // helm test pods run kafscale-check, configured by arguments
			}
			for _, e := range spec.Containers[0].Env {
				if e.Name == "KAFSCALE_LOG_LEVEL" {
					continue // set by extraEnv in a test shape, owned by the binaries' section
				}
				seen[e.Name] = true
				if !strings.Contains(string(doc), "`"+e.Name+"`") {
					t.Errorf("%s (%s, %s) is not documented in docs/runtime-settings.md", e.Name, where, shape)
				}
			}
		}
		for k := range brokerEnv(t, m) {
			if k == "KAFSCALE_LOG_LEVEL" {
				continue
			}
			if !strings.Contains(string(doc), "`"+k+"`") {
				t.Errorf("broker setting %s (%s) is not documented in docs/runtime-settings.md", k, shape)
			}
		}
	}
	if len(seen) < 15 {
		t.Errorf("only %d variables seen: %v", len(seen), seen)
	}
}

// Every metric the alerts read is documented in docs/metrics.md, where the operator and
// broker engineers implement them from.
func TestAlertMetricsAreDocumented(t *testing.T) {
	doc, err := os.ReadFile(repoPath(t, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := render(t, values{set: map[string]string{"metrics.prometheusRule.enabled": "true"}})
	r := get[monitoringv1.PrometheusRule](t, m, "PrometheusRule", name("operator"))
	for _, g := range r.Spec.Groups {
		for _, rule := range g.Rules {
			if !strings.Contains(string(doc), rule.Alert) {
				t.Errorf("alert %s is not described in docs/metrics.md", rule.Alert)
			}
			for _, metric := range metricNames(rule.Expr.String()) {
				if metric == "up" {
					continue
				}
				if !strings.Contains(string(doc), "`"+metric+"`") {
					t.Errorf("%s reads %s, which docs/metrics.md does not document", rule.Alert, metric)
				}
			}
		}
	}
}

// metricNames returns the kafscale_* and controller_runtime_* series names in a PromQL
// expression.
func metricNames(expr string) []string {
	var names []string
	for _, f := range strings.FieldsFunc(expr, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		if strings.HasPrefix(f, "kafscale_") || strings.HasPrefix(f, "controller_runtime_") {
			names = append(names, f)
		}
	}
	return names
}

// The generated schema and README match values.yaml (also checked by `make check-generated`),
// here so a plain `go test` catches drift too.
func TestSchemaIsGeneratedFromValues(t *testing.T) {
	schema, err := os.ReadFile(filepath.Join(chartDir(t), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	gen := exec.Command("go", "run", "./internal/tools/valuesschema", "-values", filepath.Join(chartDir(t), "values.yaml"))
	gen.Dir = repoPath(t)
	fresh, err := gen.Output()
	if err != nil {
		t.Fatalf("generate the schema: %v", err)
	}
	if string(fresh) != string(schema) {
		t.Fatal("charts/kafscale/values.schema.json is not what values.yaml generates: run `make generate`")
	}
	var s map[string]any
	if err := json.Unmarshal(schema, &s); err != nil {
		t.Fatal(err)
	}
	eq(t, "root is closed", s["additionalProperties"], any(false))
	props := s["properties"].(map[string]any)
	eq(t, "global stays open for parent charts", props["global"].(map[string]any)["additionalProperties"], any(true))
	var closed func(path string, n map[string]any)
	closed = func(path string, n map[string]any) {
		if p, ok := n["properties"].(map[string]any); ok && path != "global" {
			if n["additionalProperties"] != false {
				t.Errorf("%s has properties but is not closed", path)
			}
			for k, c := range p {
				closed(strings.TrimPrefix(path+"."+k, "."), c.(map[string]any))
			}
		}
	}
	closed("", s)
}

// Without etcd endpoints the operator elects through a Lease named after operator.leaderKey
// (operator/leader LeaseName); the Role lets it create Leases and read and renew only that
// one. The chart's copy of the name derivation must agree with the operator's.
func TestOperatorLeaseRBACMatchesOperator(t *testing.T) {
	cases := []struct {
		name string
		v    values
		key  string
	}{
		{"default key", values{}, "/kafscale/operator/leader"},
		{"custom key", values{set: map[string]string{"operator.leaderKey": "/Prod/Team_A//kafscale-leader"}}, "/Prod/Team_A//kafscale-leader"},
		{"long key", values{set: map[string]string{"operator.leaderKey": "/a-very-long-leader-key/that/goes/on/and/on/and/on/for/ever"}}, "/a-very-long-leader-key/that/goes/on/and/on/and/on/for/ever"},
		{"empty key, one replica: the operator's default", values{set: map[string]string{"operator.leaderKey": "", "operator.replicaCount": "1"}}, "/kafscale/" + namespace + "/operator-leader"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			role := get[rbacv1.Role](t, render(t, tc.v), "Role", name("operator"))
			var create, renew bool
			for _, r := range role.Rules {
				if !slices.Contains(r.APIGroups, "coordination.k8s.io") {
					continue
				}
				eq(t, "lease resources", r.Resources, []string{"leases"})
				switch {
				case len(r.ResourceNames) == 0:
					eq(t, "verbs on any Lease", r.Verbs, []string{"create"})
					create = true
				default:
					eq(t, "the operator's Lease", r.ResourceNames, []string{leader.LeaseName(tc.key)})
					eq(t, "verbs on its Lease", r.Verbs, []string{"get", "update"})
					renew = true
				}
			}
			eq(t, "create rule", create, true)
			eq(t, "get/update rule", renew, true)
		})
	}
}
