// Package dashboards checks the Grafana dashboards of docs/grafana: importable JSON whose
// every query names only series the binaries export. The broker's series are read from a
// running broker in tests/broker (TestGuideMetrics); the operator's from its collectors here.
package dashboards

import (
	"strings"
	"testing"

	"github.com/kafscale/kafscale/operator/controller"
	"github.com/kafscale/kafscale/operator/leader"
	"github.com/kafscale/kafscale/tests/testenv"
	"github.com/prometheus/client_golang/prometheus"
)

func TestOperatorDashboardNamesExportedSeries(t *testing.T) {
	exported := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	for _, c := range append(controller.Collectors(), leader.Collector()) {
		c.Describe(ch)
	}
	close(ch)
	for d := range ch {
		// Desc has no accessor for its name; its String form holds fqName: "<name>".
		s := d.String()
		i := strings.Index(s, `fqName: "`)
		if i < 0 {
			t.Fatalf("unexpected Desc %s", s)
		}
		name := s[i+len(`fqName: "`):]
		name = name[:strings.Index(name, `"`)]
		for _, suffix := range []string{"", "_bucket", "_count", "_sum"} {
			exported[name+suffix] = true
		}
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckDashboard(t, root+"/docs/grafana/operator-dashboard.json", exported)
}
