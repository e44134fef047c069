package testenv

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

// seriesName finds the metric names in a PromQL expression: identifiers with the prefixes
// KafScale's binaries export under (their own, and Go's and client_golang's process series).
var seriesName = regexp.MustCompile(`\b(?:kafscale|go|process|controller_runtime|workqueue)_[a-zA-Z0-9_:]*`)

// CheckDashboard fails t unless the Grafana dashboard at path is importable as it is (JSON
// with a Prometheus datasource input that every panel and query uses) and every query names
// at least one series and only series in exported (names as in /metrics, histograms with
// their _bucket, _count and _sum).
func CheckDashboard(t testing.TB, path string, exported map[string]bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Inputs []struct {
			Name, Type, PluginID string
		} `json:"__inputs"`
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr       string `json:"expr"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", path, err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" || d.UID == "" || d.Title == "" {
		t.Fatalf("%s: want a uid, a title and one Prometheus datasource input, got %+v", path, d.Inputs)
	}
	ds := "${" + d.Inputs[0].Name + "}"
	if len(d.Panels) == 0 {
		t.Fatalf("%s has no panels", path)
	}
	for _, p := range d.Panels {
		if p.Datasource.UID != ds || len(p.Targets) == 0 {
			t.Errorf("%s, panel %q: datasource %q, %d queries; want %s and at least one", path, p.Title, p.Datasource.UID, len(p.Targets), ds)
		}
		for _, q := range p.Targets {
			names := seriesName.FindAllString(q.Expr, -1)
			if len(names) == 0 || q.Datasource.UID != ds {
				t.Errorf("%s, panel %q: query %q names no series or does not use %s", path, p.Title, q.Expr, ds)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("%s, panel %q: %s is not exported (query %s)", path, p.Title, n, q.Expr)
				}
			}
		}
	}
}
