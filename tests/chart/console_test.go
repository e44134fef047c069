package chart

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The console's Deployment: probes on its /healthz and /readyz, the operator's metrics read
// through a headless Service of every operator replica, and the console.* settings.
func TestConsoleDeployment(t *testing.T) {
	m := render(t, values{})
	c := container(t, m, "console")
	eq(t, "readiness probe", c.ReadinessProbe.HTTPGet.Path, "/readyz")
	eq(t, "readiness port", c.ReadinessProbe.HTTPGet.Port.String(), "http")
	eq(t, "liveness probe", c.LivenessProbe.HTTPGet.Path, "/healthz")
	eq(t, "liveness port", c.LivenessProbe.HTTPGet.Port.String(), "http")
	eq(t, "base path", env(t, c, "KAFSCALE_CONSOLE_BASE_PATH").Value, "/")
	eq(t, "operator metrics URL", env(t, c, "KAFSCALE_CONSOLE_OPERATOR_METRICS_URL").Value,
		"http://"+name("console-operator-metrics")+"."+namespace+".svc:8080/metrics")
	eq(t, "no broker metrics URL: the registered addresses", hasEnv(c, "KAFSCALE_CONSOLE_BROKER_METRICS_URL"), false)
	eq(t, "no trusted proxies", hasEnv(c, "KAFSCALE_CONSOLE_TRUSTED_PROXIES"), false)
	s := get[corev1.Service](t, m, "Service", name("console-operator-metrics"))
	eq(t, "headless", s.Spec.ClusterIP, corev1.ClusterIPNone)
	eq(t, "selects the operator", s.Spec.Selector["app.kubernetes.io/component"], "operator")
	eq(t, "port", s.Spec.Ports[0].Port, int32(8080))
	eq(t, "target", s.Spec.Ports[0].TargetPort.String(), "metrics")
	// The operator's own metrics Service (scraped by the ServiceMonitor) stays the only one
	// labelled as the operator's.
	eq(t, "labelled as the console's", s.Labels["app.kubernetes.io/component"], "console")

	m = render(t, values{
		set: map[string]string{
			"console.basePath":           "/kafscale/",
			"console.brokerMetricsUrl":   "http://{host}:9093/metrics",
			"console.operatorMetricsUrl": "http://ops.example:8080/metrics",
		},
		setJSON: map[string]string{"console.trustedProxies": `["10.0.0.0/8","192.168.1.7"]`},
	})
	c = container(t, m, "console")
	eq(t, "base path", env(t, c, "KAFSCALE_CONSOLE_BASE_PATH").Value, "/kafscale/")
	eq(t, "broker metrics URL", env(t, c, "KAFSCALE_CONSOLE_BROKER_METRICS_URL").Value, "http://{host}:9093/metrics")
	eq(t, "operator metrics URL", env(t, c, "KAFSCALE_CONSOLE_OPERATOR_METRICS_URL").Value, "http://ops.example:8080/metrics")
	eq(t, "trusted proxies", env(t, c, "KAFSCALE_CONSOLE_TRUSTED_PROXIES").Value, "10.0.0.0/8,192.168.1.7")
	eq(t, "no headless Service with an explicit URL", m.has("Service", name("console-operator-metrics")), false)

	m = render(t, values{set: map[string]string{"console.enabled": "false"}})
	eq(t, "no headless Service without the console", m.has("Service", name("console-operator-metrics")), false)
}
