package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kafscale/kafscale/console/auth"
	"github.com/kafscale/kafscale/console/cluster"
	"github.com/kafscale/kafscale/console/history"
	"github.com/kafscale/kafscale/console/records"
)

func TestMain(m *testing.M) {
	restore := auth.SetKeyIterationsForTest(1000)
	code := m.Run()
	restore()
	os.Exit(code)
}

type fakeCluster struct{}

func (fakeCluster) Overview(context.Context) cluster.Overview {
	yes := true
	return cluster.Overview{Namespace: "ns", Cluster: "c", Etcd: cluster.EtcdStatus{Reachable: true},
		Brokers: []cluster.Broker{{NodeID: 3, Host: "b3", Port: 9092, Live: &yes, MetricsError: "metrics unreachable"}}}
}
func (fakeCluster) Topics(context.Context) cluster.Topics {
	return cluster.Topics{Topics: []cluster.TopicSummary{{Name: "orders", Partitions: 3}}}
}
func (fakeCluster) Topic(_ context.Context, name string) cluster.Topic {
	if name != "orders" {
		return cluster.Topic{Name: name}
	}
	return cluster.Topic{Name: name, Found: true, Partitions: []cluster.Partition{{ID: 0, HighWatermark: 7}}}
}
func (fakeCluster) Groups(context.Context) cluster.Groups {
	return cluster.Groups{Groups: []cluster.GroupSummary{{Name: "g"}}}
}
func (fakeCluster) Group(_ context.Context, name string) cluster.Group {
	return cluster.Group{GroupSummary: cluster.GroupSummary{Name: name}, Found: name == "g"}
}

type fakeHistory struct{}

func (fakeHistory) History() history.History {
	return history.History{IntervalSeconds: 10, Times: []int64{}}
}

type fakeRecords struct{ last *records.Query }

func (f *fakeRecords) Max() int { return 100 }
func (f *fakeRecords) Read(_ context.Context, q records.Query) (*records.Result, error) {
	f.last = &q
	if q.Topic != "orders" {
		return nil, records.ErrNotFound
	}
	return &records.Result{Topic: q.Topic, Partition: q.Partition, Records: []records.Record{{Offset: 5, Value: []byte("v")}}}, nil
}

type env struct {
	h       http.Handler
	ready   *atomic.Bool
	records *fakeRecords
	now     *time.Time
}

func newEnv(t *testing.T, user, pass string) *env {
	t.Helper()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	e := &env{ready: &atomic.Bool{}, records: &fakeRecords{}, now: &now}
	g, err := auth.New(auth.Options{Username: user, Password: pass, Scope: "ns/c", SessionTTL: time.Hour, CookiePath: "/kafscale/",
		Limiter: auth.NewLimiter(5, time.Minute), Now: func() time.Time { return *e.now }})
	if err != nil {
		t.Fatal(err)
	}
	e.h = Handler(Options{BasePath: "/kafscale/", Guard: g, Cluster: fakeCluster{}, History: fakeHistory{}, Records: e.records,
		Version: "v-test", Registry: prometheus.NewRegistry(), Ready: e.ready})
	return e
}

func (e *env) do(method, path, body string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func (e *env) login(t *testing.T) *http.Cookie { return e.loginAs(t, "pw") }

func (e *env) loginAs(t *testing.T, password string) *http.Cookie {
	t.Helper()
	w := e.do(http.MethodPost, "/kafscale/auth/login", `{"username":"admin","password":"`+password+`"}`)
	if w.Code != http.StatusNoContent {
		t.Fatalf("login = %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == auth.SessionCookie {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// Every API endpoint of the console.
var endpoints = []string{
	"/kafscale/api/overview",
	"/kafscale/api/topics",
	"/kafscale/api/topic?name=orders",
	"/kafscale/api/groups",
	"/kafscale/api/group?name=g",
	"/kafscale/api/history",
	"/kafscale/api/records?topic=orders&partition=0",
}

func TestEveryEndpointRefusedWithoutAValidSession(t *testing.T) {
	e := newEnv(t, "admin", "pw")
	// An expired session: made an hour and a second ago.
	*e.now = e.now.Add(-time.Hour - time.Second)
	expired := e.login(t)
	*e.now = e.now.Add(time.Hour + time.Second)
	valid := e.login(t)
	// A forged session: claims a far expiry, carries the valid session's signature.
	_, sig, _ := strings.Cut(valid.Value, ".")
	forgedValue := base64.RawURLEncoding.EncodeToString([]byte(`{"u":"admin","exp":99999999999,"n":"x"}`)) + "." + sig
	other := newEnv(t, "admin", "another-password")
	*other.now = *e.now
	foreign := other.loginAs(t, "another-password")
	cases := map[string][]*http.Cookie{
		"no cookie":                        nil,
		"forged cookie":                    {{Name: auth.SessionCookie, Value: forgedValue}},
		"expired cookie":                   {expired},
		"cookie of another password":       {foreign},
		"device cookie only":               {{Name: auth.DeviceCookie, Value: valid.Value}},
		"session value under another name": {{Name: "session", Value: valid.Value}},
	}
	for _, path := range endpoints {
		for name, cookies := range cases {
			w := e.do(http.MethodGet, path, "", cookies...)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("%s with %s: %d, want 401", path, name, w.Code)
			}
			if strings.Contains(w.Body.String(), "orders") || strings.Contains(w.Body.String(), "b3") {
				t.Errorf("%s with %s leaked data: %s", path, name, w.Body)
			}
		}
		if w := e.do(http.MethodGet, path, "", valid); w.Code != http.StatusOK {
			t.Errorf("%s with a valid session: %d %s", path, w.Code, w.Body)
		}
	}
	if e.records.last == nil || e.records.last.Limit != 20 {
		t.Errorf("record query %+v, want the default limit 20", e.records.last)
	}
}

func TestEveryEndpointRefusedWithoutLogin(t *testing.T) {
	e := newEnv(t, "", "")
	for _, path := range append(endpoints, "/kafscale/auth/login") {
		method := http.MethodGet
		if strings.HasSuffix(path, "login") {
			method = http.MethodPost
		}
		w := e.do(method, path, `{"username":"","password":""}`, &http.Cookie{Name: auth.SessionCookie, Value: "x.y"})
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "KAFSCALE_UI_USERNAME") {
			t.Errorf("%s without a login configured: %d %s, want 503 naming KAFSCALE_UI_USERNAME", path, w.Code, w.Body)
		}
	}
	w := e.do(http.MethodGet, "/kafscale/auth/status", "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"loginConfigured":false`) {
		t.Errorf("status = %d %s", w.Code, w.Body)
	}
}

func TestAPIAnswers(t *testing.T) {
	e := newEnv(t, "admin", "pw")
	s := e.login(t)
	get := func(path string) (int, map[string]any) {
		w := e.do(http.MethodGet, path, "", s)
		var v map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &v)
		return w.Code, v
	}
	code, ov := get("/kafscale/api/overview")
	b := ov["brokers"].([]any)[0].(map[string]any)
	if code != 200 || ov["consoleVersion"] != "v-test" || b["nodeId"].(float64) != 3 {
		t.Errorf("overview = %d %v", code, ov)
	}
	// Unknown values are null, never a number.
	for _, k := range []string{"s3Health", "drainState", "produceRps", "version"} {
		if v, ok := b[k]; !ok || v != nil {
			t.Errorf("broker %s = %v (present %v), want null", k, v, ok)
		}
	}
	if code, _ := get("/kafscale/api/topic?name=nope"); code != http.StatusNotFound {
		t.Errorf("unknown topic = %d, want 404", code)
	}
	if code, _ := get("/kafscale/api/group?name=nope"); code != http.StatusNotFound {
		t.Errorf("unknown group = %d, want 404", code)
	}
	// In order: the record query checked below is the last one asked.
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/kafscale/api/topic", 400},
		{"/kafscale/api/records?topic=orders", 400},
		{"/kafscale/api/records?topic=orders&partition=0&limit=101", 400},
		{"/kafscale/api/records?topic=orders&partition=0&offset=-1", 400},
		{"/kafscale/api/records?topic=orders&partition=0&offset=1&timestamp=2", 400},
		{"/kafscale/api/records?topic=gone&partition=0", 404},
		{"/kafscale/api/records?topic=orders&partition=0&timestamp=1700000000000&limit=3", 200},
	} {
		if code, body := get(tc.path); code != tc.want {
			t.Errorf("%s = %d %v, want %d", tc.path, code, body, tc.want)
		}
	}
	if q := e.records.last; q.Timestamp == nil || *q.Timestamp != 1700000000000 || q.Limit != 3 {
		t.Errorf("record query %+v", q)
	}
	if w := e.do(http.MethodPost, "/kafscale/api/overview", "", s); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST to the API = %d, want 405", w.Code)
	}
}

func TestPageAssetsAndHeaders(t *testing.T) {
	e := newEnv(t, "admin", "pw")
	for path, ct := range map[string]string{
		"/kafscale/":                 "text/html",
		"/kafscale/static/app.js":    "text/javascript",
		"/kafscale/static/style.css": "text/css",
		"/kafscale/static/icon.svg":  "image/svg+xml",
		"/kafscale/auth/status":      "application/json",
	} {
		w := e.do(http.MethodGet, path, "")
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), ct) {
			t.Errorf("%s = %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
		if w.Header().Get("Content-Security-Policy") != CSP || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: security headers %v", path, w.Header())
		}
	}
	if !strings.Contains(CSP, "script-src 'self'") || strings.Contains(CSP, "unsafe-inline") || strings.Contains(CSP, "unsafe-eval") {
		t.Errorf("CSP %q must allow only the console's own script", CSP)
	}
	for _, path := range []string{"/kafscale/static/other.js", "/kafscale/nothing", "/other/"} {
		if w := e.do(http.MethodGet, path, ""); w.Code != http.StatusNotFound {
			t.Errorf("%s = %d, want 404", path, w.Code)
		}
	}
	if w := e.do(http.MethodGet, "/kafscale", ""); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/kafscale/" {
		t.Errorf("/kafscale = %d -> %q", w.Code, w.Header().Get("Location"))
	}
	if w := e.do(http.MethodGet, "/healthz", ""); w.Code != 200 {
		t.Errorf("/healthz = %d", w.Code)
	}
	if w := e.do(http.MethodGet, "/readyz", ""); w.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before ready = %d", w.Code)
	}
	e.ready.Store(true)
	if w := e.do(http.MethodGet, "/readyz", ""); w.Code != 200 {
		t.Errorf("/readyz = %d", w.Code)
	}
	w := e.do(http.MethodGet, "/metrics", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `kafscale_console_http_requests_total{code="404",route="static/{file}"} 1`) {
		t.Errorf("/metrics = %d:\n%s", w.Code, w.Body)
	}
}

// The page has no inline script or event handler attributes, links everything relatively
// (so it works under any prefix), and its script never turns strings into markup: names
// from the cluster can only become text.
func TestPageSourceRendersTextOnly(t *testing.T) {
	html, _ := assets.ReadFile("assets/index.html")
	js, _ := assets.ReadFile("assets/app.js")
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(string(html), -1) {
		if !strings.Contains(m, `src="static/`) {
			t.Errorf("inline or foreign script tag %s", m)
		}
	}
	if regexp.MustCompile(`(?i)\son[a-z]+=`).Match(html) {
		t.Error("index.html has an event handler attribute")
	}
	if regexp.MustCompile(`(href|src)="/`).Match(html) {
		t.Error("index.html has an absolute link: it would break under a path prefix")
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(string(js), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	if regexp.MustCompile(`fetch\("/|request\("/|api\("/`).Match(js) {
		t.Error("app.js fetches an absolute path: it would break under a path prefix")
	}
}
