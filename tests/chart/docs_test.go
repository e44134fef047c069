package chart

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/helm"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
)

// docExample is one `<!-- example: name -->` block of docs/operations.md.
type docExample struct {
	name  string
	block string
}

var exampleMarker = regexp.MustCompile("(?s)<!-- example: ([a-z0-9-]+) -->\\s*```sh\\n(.*?)```")

func operationsExamples(t testing.TB) []docExample {
	t.Helper()
	doc, err := os.ReadFile(repoPath(t, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []docExample
	for _, m := range exampleMarker.FindAllStringSubmatch(string(doc), -1) {
		out = append(out, docExample{name: m[1], block: m[2]})
	}
	return out
}

// shellWords splits one command line the way sh would for the quoting these docs use:
// single quotes, double quotes (with $VARS expanded from vars) and backslash escapes.
func shellWords(t testing.TB, line string, vars map[string]string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated ' in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				t.Fatalf("unterminated \" in %q", line)
			}
			cur.WriteString(os.Expand(line[i+1:i+1+j], func(k string) string {
				v, ok := vars[k]
				if !ok {
					t.Fatalf("example uses $%s; give the test a value for it", k)
				}
				return v
			}))
			i += j + 1
			inWord = true
		case ch == '\\' && i+1 < len(line):
			cur.WriteByte(line[i+1])
			i++
			inWord = true
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '#' && !inWord:
			i = len(line)
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// helmValueArgs turns an example's `helm upgrade --install` into the value flags for `helm
// template`, writing the files its heredocs create into dir.
func helmValueArgs(t testing.TB, block, dir string, vars map[string]string) []string {
	t.Helper()
	lines := strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n")
	var args []string
	found := false
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if m := regexp.MustCompile(`^cat > (\S+) <<'EOF'$`).FindStringSubmatch(line); m != nil {
			var body []string
			for i++; i < len(lines) && lines[i] != "EOF"; i++ {
				body = append(body, lines[i])
			}
			if err := os.WriteFile(filepath.Join(dir, m[1]), []byte(strings.Join(body, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w := shellWords(t, line, vars)
		if len(w) < 3 || w[0] != "helm" || w[1] != "upgrade" || w[2] != "--install" {
			continue
		}
		found = true
		for j := 3; j < len(w); j++ {
			switch w[j] {
			case "--set", "--set-string", "--set-json":
				args = append(args, w[j], w[j+1])
				j++
			case "--set-file", "-f", "--values":
				val := w[j+1]
				if w[j] == "--set-file" {
					k, path, _ := strings.Cut(val, "=")
					val = k + "=" + filepath.Join(dir, path)
				} else {
					val = filepath.Join(dir, val)
				}
				args = append(args, w[j], val)
				j++
			case "-n", "--namespace":
				j++
			case "--create-namespace", "--reuse-values":
			default:
				if strings.HasPrefix(w[j], "-") {
					t.Fatalf("example uses %s, which the test does not understand", w[j])
				}
			}
		}
	}
	if !found {
		t.Fatalf("example has no `helm upgrade --install` command:\n%s", block)
	}
	return args
}

// Every example command in docs/operations.md renders, and does what the text says.
func TestOperationsGuideExamples(t *testing.T) {
	vars := map[string]string{"CONSOLE_PASSWORD": "correct-horse-battery"}
	checks := map[string]func(t *testing.T, m manifest){
		"etcd-and-image-tags": func(t *testing.T, m manifest) {
			c := container(t, m, "operator")
			eps := "http://etcd-0.etcd:2379,http://etcd-1.etcd:2379,http://etcd-2.etcd:2379"
			eq(t, "operator etcd", env(t, c, "KAFSCALE_OPERATOR_ETCD_ENDPOINTS").Value, eps)
			eq(t, "proxy etcd", env(t, container(t, m, "proxy"), "KAFSCALE_PROXY_ETCD_ENDPOINTS").Value, eps)
			eq(t, "leader key", env(t, c, "KAFSCALE_OPERATOR_LEADER_KEY").Value, "/kafscale/prod/operator-leader")
			eq(t, "operator image", c.Image, "ghcr.io/kafscale/kafscale-operator:0.1.0")
			eq(t, "broker image", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE").Value, "ghcr.io/kafscale/kafscale-broker:0.1.0")
			eq(t, "proxy image", container(t, m, "proxy").Image, "ghcr.io/kafscale/kafscale-proxy:0.1.0")
			eq(t, "console image", container(t, m, "console").Image, "ghcr.io/kafscale/kafscale-console:0.1.0")
		},
		"latest-images": func(t *testing.T, m manifest) {
			for _, comp := range []string{"operator", "proxy", "console"} {
				c := container(t, m, comp)
				if !strings.HasSuffix(c.Image, ":latest") || c.ImagePullPolicy != corev1.PullAlways {
					t.Errorf("%s: %s %s", comp, c.Image, c.ImagePullPolicy)
				}
			}
			c := container(t, m, "operator")
			eq(t, "broker image", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE").Value, "ghcr.io/kafscale/kafscale-broker:latest")
			eq(t, "broker pull policy", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE_PULL_POLICY").Value, "Always")
		},
		"console-auth": func(t *testing.T, m manifest) {
			s := get[corev1.Secret](t, m, "Secret", name("console"))
			eq(t, "password stored", string(s.Data["password"]), vars["CONSOLE_PASSWORD"])
			eq(t, "username stored", string(s.Data["username"]), "admin")
			eq(t, "password from the Secret", env(t, container(t, m, "console"), "KAFSCALE_UI_PASSWORD").ValueFrom.SecretKeyRef.Name, name("console"))
		},
		"console-existing-secret": func(t *testing.T, m manifest) {
			eq(t, "no chart Secret", m.has("Secret", name("console")), false)
			c := container(t, m, "console")
			eq(t, "username from", env(t, c, "KAFSCALE_UI_USERNAME").ValueFrom.SecretKeyRef.Name, "kafscale-console-login")
			eq(t, "password key", env(t, c, "KAFSCALE_UI_PASSWORD").ValueFrom.SecretKeyRef.Key, "password")
			i := get[networkingv1.Ingress](t, m, "Ingress", name("console"))
			eq(t, "ingress host", i.Spec.Rules[0].Host, "kafscale.example.com")
			eq(t, "ingress class", *i.Spec.IngressClassName, "nginx")
		},
		"ha-proxy": func(t *testing.T, m manifest) {
			eq(t, "replicas", *deployment(t, m, "proxy").Spec.Replicas, int32(3))
			s := get[corev1.Service](t, m, "Service", name("proxy"))
			eq(t, "type", s.Spec.Type, corev1.ServiceTypeLoadBalancer)
			eq(t, "annotation", s.Annotations["service.beta.kubernetes.io/aws-load-balancer-type"], "nlb")
			eq(t, "source ranges", s.Spec.LoadBalancerSourceRanges, []string{"10.0.0.0/8", "192.168.0.0/16"})
			c := container(t, m, "proxy")
			eq(t, "advertised host", env(t, c, "KAFSCALE_PROXY_ADVERTISED_HOST").Value, "kafka.example.com")
			eq(t, "advertised port", env(t, c, "KAFSCALE_PROXY_ADVERTISED_PORT").Value, "9092")
			eq(t, "etcd", env(t, c, "KAFSCALE_PROXY_ETCD_ENDPOINTS").Value, "http://etcd-0.etcd:2379,http://etcd-1.etcd:2379,http://etcd-2.etcd:2379")
			eq(t, "PDB", get[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget", name("proxy")).Spec.MaxUnavailable.IntValue(), 1)
			md := strings.Join(get[corev1.Pod](t, m, "Pod", name("test-metadata")).Spec.Containers[0].Args, " ")
			// Pods use the internal listener: kafka.example.com is for clients outside.
			if !strings.Contains(md, "-bootstrap "+name("proxy-internal")+":9094") || !strings.Contains(md, "-advertised "+name("proxy-internal")+".streaming.svc:9094") {
				t.Errorf("helm test checks the wrong endpoint: %s", md)
			}
			eq(t, "internal listener", env(t, c, "KAFSCALE_PROXY_INTERNAL_ADVERTISED_HOST").Value, name("proxy-internal")+".streaming.svc")
			eq(t, "internal Service type", get[corev1.Service](t, m, "Service", name("proxy-internal")).Spec.Type, corev1.ServiceTypeClusterIP)
		},
		"acl-proxy-protocol": func(t *testing.T, m manifest) {
			e := brokerEnv(t, m)
			eq(t, "ACLs on", e["KAFSCALE_ACL_ENABLED"], "true")
			if !strings.Contains(e["KAFSCALE_ACL_CONFIG_JSON"], `"name": "orders-", "patternType": "prefixed"`) {
				t.Errorf("ACL JSON not passed through: %q", e["KAFSCALE_ACL_CONFIG_JSON"])
			}
			eq(t, "principal source", e["KAFSCALE_PRINCIPAL_SOURCE"], "proxy_addr")
			eq(t, "PROXY protocol", e["KAFSCALE_PROXY_PROTOCOL"], "true")
			eq(t, "proxy sends it", env(t, container(t, m, "proxy"), "KAFSCALE_PROXY_PROXY_PROTOCOL").Value, "true")
		},
		"broker-debug": func(t *testing.T, m manifest) {
			eq(t, "log level", brokerEnv(t, m)["KAFSCALE_LOG_LEVEL"], "debug")
			c := container(t, m, "operator")
			eq(t, "debug image", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE").Value, "ghcr.io/kafscale/kafscale-broker:0.1.0-debug")
			eq(t, "pull policy", env(t, c, "KAFSCALE_OPERATOR_BROKER_IMAGE_PULL_POLICY").Value, "Always")
		},
		"broker-trace": func(t *testing.T, m manifest) {
			eq(t, "log level", brokerEnv(t, m)["KAFSCALE_LOG_LEVEL"], "debug")
			eq(t, "protocol tracing", brokerEnv(t, m)["KAFSCALE_TRACE_KAFKA"], "true")
		},
		"monitoring": func(t *testing.T, m manifest) {
			sm := get[monitoringv1.ServiceMonitor](t, m, "ServiceMonitor", name("operator"))
			eq(t, "ServiceMonitor label", sm.Labels["release"], "kube-prometheus-stack")
			r := get[monitoringv1.PrometheusRule](t, m, "PrometheusRule", name("operator"))
			eq(t, "rule label", r.Labels["release"], "kube-prometheus-stack")
			eq(t, "alert label", r.Spec.Groups[0].Rules[0].Labels["team"], "streaming")
		},
	}
	examples := operationsExamples(t)
	var names []string
	for _, ex := range examples {
		names = append(names, ex.name)
		check, ok := checks[ex.name]
		if !ok {
			t.Errorf("docs/operations.md example %q has no check here", ex.name)
			continue
		}
		t.Run(ex.name, func(t *testing.T) {
			requireHelm(t)
			args := helmValueArgs(t, ex.block, t.TempDir(), vars)
			out, err := helm.RenderTemplateE(t, values{}.options(namespace), chartDir(t), release, nil, args...)
			if err != nil {
				t.Fatalf("helm %v: %v", args, err)
			}
			check(t, parseManifest(t, out))
		})
	}
	for n := range checks {
		if !slices.Contains(names, n) {
			t.Errorf("check %q has no example in docs/operations.md", n)
		}
	}
}
