package chart

import (
	"strings"
	"testing"
)

// Bad combinations fail at render time with a sentence that says what to change.
func TestBadCombinationsFailWithAFix(t *testing.T) {
	cases := []struct {
		name string
		v    values
		want string // the message a user sees, verbatim
	}{
		{"the stale threshold in its old place",
			values{set: map[string]string{"metrics.prometheusRule.snapshotStaleSeconds": "3600"}},
			"metrics.prometheusRule.snapshotStaleSeconds has moved: set operator.etcdSnapshot.staleAfterSeconds instead"},
		{"console username without password",
			values{set: map[string]string{"console.auth.username": "admin"}},
			"console.auth.username is set without console.auth.password: set console.auth.password too, or name a Secret in console.auth.existingSecret"},
		{"console password without username",
			values{set: map[string]string{"console.auth.password": "x"}},
			"console.auth.password is set without console.auth.username: set console.auth.username too, or name a Secret in console.auth.existingSecret"},
		{"existing Secret and literal login",
			values{set: map[string]string{"console.auth.existingSecret": "login", "console.auth.username": "admin", "console.auth.password": "x"}},
			"console.auth.existingSecret is set together with console.auth.username/password: keep the login in the existing Secret and leave username and password empty"},
		{"LoadBalancer proxy without advertised host",
			values{set: map[string]string{"proxy.service.type": "LoadBalancer"}},
			"proxy.service.type is LoadBalancer but proxy.advertisedHost is empty: clients outside the cluster cannot resolve the Service's cluster DNS name; set proxy.advertisedHost to the load balancer's DNS name or IP"},
		{"NodePort proxy without advertised host",
			values{set: map[string]string{"proxy.service.type": "NodePort"}},
			"proxy.service.type is NodePort but proxy.advertisedHost is empty"},
		{"source ranges without LoadBalancer",
			values{set: map[string]string{"proxy.service.loadBalancerSourceRanges": "{10.0.0.0/8}"}},
			"proxy.service.loadBalancerSourceRanges is set but proxy.service.type is not LoadBalancer: set proxy.service.type=LoadBalancer or remove the ranges"},
		{"internal listener on the main Kafka port",
			values{set: map[string]string{"proxy.internalListener.port": "9092"}},
			"proxy.internalListener.port is 9092, a port the proxy pod already uses (9092 is the main Kafka listener's, 9093 proxy.metrics.port): choose another, e.g. 9094"},
		{"internal listener on the metrics port",
			values{set: map[string]string{"proxy.internalListener.port": "9100", "proxy.metrics.port": "9100"}},
			"proxy.internalListener.port is 9100, a port the proxy pod already uses"},
		{"nodePort on ClusterIP",
			values{set: map[string]string{"proxy.service.nodePort": "30092"}},
			"proxy.service.nodePort is set but proxy.service.type is ClusterIP"},
		{"externalTrafficPolicy on ClusterIP",
			values{set: map[string]string{"proxy.service.externalTrafficPolicy": "Local"}},
			"proxy.service.externalTrafficPolicy is set but proxy.service.type is ClusterIP"},
		{"useLatest with a tag",
			values{set: map[string]string{"operator.image.useLatest": "true", "operator.image.tag": "1.0.0"}},
			"operator.image.useLatest is true and operator.image.tag or operator.image.digest is set: remove the tag and digest, or set useLatest to false"},
		{"broker useLatest with a tag",
			values{set: map[string]string{"operator.brokerImage.useLatest": "true", "operator.brokerImage.tag": "1.0.0"}},
			"operator.brokerImage.useLatest is true and operator.brokerImage.tag or operator.brokerImage.digest is set"},
		{"console useLatest with a digest",
			values{set: map[string]string{"console.image.useLatest": "true", "console.image.digest": "sha256:" + strings.Repeat("0", 64)}},
			"console.image.useLatest is true and console.image.tag or console.image.digest is set"},
		{"broker tag in two places",
			values{set: map[string]string{"broker.image.tag": "1.0.0", "operator.brokerImage.tag": "2.0.0"}},
			"broker.image.tag (1.0.0) and operator.brokerImage.tag (2.0.0) disagree: set the broker tag in one place only"},
		{"HA operator without leader key",
			values{set: map[string]string{"operator.replicaCount": "2", "operator.leaderKey": ""}},
			"operator.replicaCount is 2 or more but operator.leaderKey is empty: set operator.leaderKey (a key such as /kafscale/operator/leader: the etcd key of the lock, or the name of its Kubernetes Lease without etcd endpoints) so the replicas can elect a leader, or set operator.replicaCount=1"},
		{"ACLs without rules",
			values{set: map[string]string{"operator.acl.enabled": "true"}},
			"operator.acl.enabled is true but operator.acl.configJson is empty: brokers fail closed and would deny every client; set operator.acl.configJson to your ACL rules"},
		{"ACL rules that are not JSON",
			values{setJSON: map[string]string{"operator.acl.configJson": `"{rules: [}"`}},
			"operator.acl.configJson is not a JSON object"},
		{"proxy_addr without PROXY protocol",
			values{set: map[string]string{"operator.auth.principalSource": "proxy_addr"}},
			"operator.auth.principalSource is proxy_addr but operator.auth.proxyProtocol is false: set operator.auth.proxyProtocol=true (the address comes from the PROXY protocol header), or choose client_id or remote_addr"},
		{"chart-owned broker setting in broker.env",
			values{set: map[string]string{"broker.env.KAFSCALE_ACL_ENABLED": "true"}},
			"broker.env.KAFSCALE_ACL_ENABLED is set by the chart from operator.acl / operator.auth: set it there and remove it from broker.env"},
		{"Ingress without console",
			values{set: map[string]string{"console.enabled": "false", "console.ingress.enabled": "true"}},
			"console.ingress.enabled is true but console.enabled is false: enable the console or turn the Ingress off"},
		{"Ingress without hosts",
			values{set: map[string]string{"console.ingress.enabled": "true"}, setJSON: map[string]string{"console.ingress.hosts": "[]"}},
			"console.ingress.enabled is true but console.ingress.hosts is empty: add at least one host"},
		{"proxy ServiceMonitor without the proxy's metrics Service",
			values{set: map[string]string{"metrics.serviceMonitor.enabled": "true", "proxy.metrics.service.enabled": "false"}},
			"metrics.serviceMonitor.proxy is true but proxy.metrics.service.enabled is false: the proxy's ServiceMonitor scrapes that Service; enable it, or set metrics.serviceMonitor.proxy=false"},
		{"ServiceMonitor without metrics Service",
			values{set: map[string]string{"metrics.serviceMonitor.enabled": "true", "metrics.service.enabled": "false"}},
			"metrics.serviceMonitor.enabled is true but metrics.service.enabled is false: the ServiceMonitor scrapes that Service; enable it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderE(t, tc.v)
			if err == nil {
				t.Fatalf("rendered; want the error %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not say what to change:\n got: %v\nwant: %s", err, tc.want)
			}
		})
	}
}

// values.schema.json rejects wrong types and unknown keys. The want strings are what
// `helm install` prints to the user.
func TestSchemaRejectsTyposAndWrongTypes(t *testing.T) {
	cases := []struct {
		name string
		v    values
		want []string
	}{
		{"operator.replicaCount=abc", values{set: map[string]string{"operator.replicaCount": "abc"}}, []string{
			"values don't meet the specifications of the schema(s) in the following chart(s):",
			"kafscale:",
			"- at '/operator/replicaCount': got string, want integer",
		}},
		{"misspelt key operator.replicaCont", values{set: map[string]string{"operator.replicaCont": "3"}}, []string{
			"- at '/operator': additional properties 'replicaCont' not allowed",
		}},
		{"unknown top-level key", values{set: map[string]string{"prxy.enabled": "true"}}, []string{
			"- at '': additional properties 'prxy' not allowed",
		}},
		{"enum", values{set: map[string]string{"proxy.service.type": "ExternalName"}}, []string{
			"- at '/proxy/service/type': value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'",
		}},
		{"principal source", values{set: map[string]string{"operator.auth.principalSource": "sasl"}}, []string{
			"- at '/operator/auth/principalSource': value must be one of 'client_id', 'remote_addr', 'proxy_addr'",
		}},
		{"minimum", values{set: map[string]string{"proxy.replicaCount": "0"}}, []string{
			"- at '/proxy/replicaCount': minimum: got 0, want 1",
		}},
		{"snapshot bucket name", values{set: map[string]string{"operator.etcdSnapshot.bucket": "Etcd_Backups"}}, []string{
			"- at '/operator/etcdSnapshot/bucket': 'Etcd_Backups' does not match pattern",
		}},
		{"snapshot endpoint", values{set: map[string]string{"operator.etcdSnapshot.s3Endpoint": "minio:9000"}}, []string{
			"- at '/operator/etcdSnapshot/s3Endpoint': 'minio:9000' does not match pattern",
		}},
		{"stale threshold", values{set: map[string]string{"operator.etcdSnapshot.staleAfterSeconds": "10"}}, []string{
			"- at '/operator/etcdSnapshot/staleAfterSeconds': minimum: got 10, want 60",
		}},
		{"etcd URL", values{set: map[string]string{"operator.etcdEndpoints": "{etcd-0:2379}"}}, []string{
			"- at '/operator/etcdEndpoints/0': 'etcd-0:2379' does not match pattern '^https?://'",
		}},
		{"broker.env value type", values{setJSON: map[string]string{"broker.env": `{"KAFSCALE_CACHE_BYTES": {"bytes": 1024}}`}}, []string{
			"- at '/broker/env/KAFSCALE_CACHE_BYTES': got object, want",
		}},
		// Helm's JSON Schema library reports a wrong location for propertyNames errors; the
		// name and the pattern it breaks are right.
		{"broker.env variable name", values{setString: map[string]string{"broker.env.kafscale-log-level": "debug"}}, []string{
			"invalid propertyName 'kafscale-log-level'",
			"'kafscale-log-level' does not match pattern '^[A-Za-z_][A-Za-z0-9_]*$'",
		}},
		{"annotation value type", values{set: map[string]string{"proxy.service.annotations.example\\.com/enabled": "true"}}, []string{
			"- at '/proxy/service/annotations/example.com~1enabled': got boolean, want string",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderE(t, tc.v)
			if err == nil {
				t.Fatal("the schema accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			t.Logf("user sees:\n%s", err)
		})
	}
	// global stays open for parent charts.
	render(t, values{set: map[string]string{"global.storageClass": "gp3"}})
}
