// Package web serves the console: the embedded page (HTML, CSS, JavaScript written for it:
// no CDN, no build step), the JSON API behind the login, and /healthz, /readyz, /metrics.
//
// Every response carries a Content-Security-Policy that allows only the console's own
// script and style files: no inline script, no other origin. The page puts every name that
// comes from the cluster into the DOM as text (textContent), never as HTML.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kafscale/kafscale/console/auth"
	"github.com/kafscale/kafscale/console/cluster"
	"github.com/kafscale/kafscale/console/history"
	"github.com/kafscale/kafscale/console/records"
)

//go:embed assets
var assets embed.FS

// CSP forbids inline script and style, and every origin but the console's own.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Cluster is what the API reads.
type Cluster interface {
	Overview(ctx context.Context) cluster.Overview
	Topics(ctx context.Context) cluster.Topics
	Topic(ctx context.Context, name string) cluster.Topic
	Groups(ctx context.Context) cluster.Groups
	Group(ctx context.Context, name string) cluster.Group
}

// History is the server-side samples.
type History interface{ History() history.History }

// Records reads records for the viewer.
type Records interface {
	Read(ctx context.Context, q records.Query) (*records.Result, error)
	Max() int
}

// Options configure the handler.
type Options struct {
	BasePath string // with leading and trailing slash
	Guard    *auth.Guard
	Cluster  Cluster
	History  History
	Records  Records
	Version  string
	// Registry is served on /metrics; the handler registers its own series there.
	Registry *prometheus.Registry
	// Ready reports readiness for /readyz.
	Ready *atomic.Bool
}

// Handler returns the console's HTTP handler.
func Handler(o Options) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kafscale_console_http_requests_total",
		Help: "HTTP requests answered by the console, by route and status code.",
	}, []string{"route", "code"})
	o.Registry.MustRegister(requests)
	static, _ := fs.Sub(assets, "assets")

	app := http.NewServeMux()
	route := func(name string, h http.HandlerFunc) {
		app.HandleFunc("/"+name, func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
			h(rec, r)
			requests.WithLabelValues(name, strconv.Itoa(rec.code)).Inc()
		})
	}
	api := func(name string, h func(r *http.Request) (any, int)) {
		route("api/"+name, func(w http.ResponseWriter, r *http.Request) {
			o.Guard.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet {
					writeError(w, http.StatusMethodNotAllowed, "use GET")
					return
				}
				v, code := h(r)
				writeJSON(w, code, v)
			})).ServeHTTP(w, r)
		})
	}
	route("{$}", func(w http.ResponseWriter, r *http.Request) {
		serveAsset(w, r, static, "index.html", "text/html; charset=utf-8")
	})
	route("static/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		types := map[string]string{"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8", "icon.svg": "image/svg+xml"}
		ct, ok := types[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		serveAsset(w, r, static, name, ct)
	})
	route("auth/status", o.Guard.Status)
	route("auth/login", o.Guard.Login)
	route("auth/logout", o.Guard.Logout)
	api("overview", func(r *http.Request) (any, int) {
		ov := o.Cluster.Overview(r.Context())
		return struct {
			cluster.Overview
			ConsoleVersion string `json:"consoleVersion"`
		}{ov, o.Version}, http.StatusOK
	})
	api("topics", func(r *http.Request) (any, int) { return o.Cluster.Topics(r.Context()), http.StatusOK })
	api("topic", func(r *http.Request) (any, int) {
		name := r.URL.Query().Get("name")
		if name == "" {
			return errorBody("name the topic: ?name=<topic>"), http.StatusBadRequest
		}
		t := o.Cluster.Topic(r.Context(), name)
		if !t.Found && t.Error == "" {
			return t, http.StatusNotFound
		}
		return t, http.StatusOK
	})
	api("groups", func(r *http.Request) (any, int) { return o.Cluster.Groups(r.Context()), http.StatusOK })
	api("group", func(r *http.Request) (any, int) {
		name := r.URL.Query().Get("name")
		if name == "" {
			return errorBody("name the group: ?name=<group>"), http.StatusBadRequest
		}
		g := o.Cluster.Group(r.Context(), name)
		if !g.Found && g.Error == "" {
			return g, http.StatusNotFound
		}
		return g, http.StatusOK
	})
	api("history", func(r *http.Request) (any, int) { return o.History.History(), http.StatusOK })
	api("records", func(r *http.Request) (any, int) { return readRecords(r, o.Records) })

	base := strings.TrimSuffix(o.BasePath, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !o.Ready.Load() {
			http.Error(w, "not ready: starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	if base != "" {
		// The page links everything relatively, so /kafscale (no slash) must become
		// /kafscale/ for its links to resolve under the prefix.
		mux.Handle(base, http.RedirectHandler(o.BasePath, http.StatusMovedPermanently))
	}
	mux.Handle(o.BasePath, http.StripPrefix(base, app))
	return securityHeaders(mux)
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func serveAsset(w http.ResponseWriter, r *http.Request, static fs.FS, name, contentType string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	data, err := fs.ReadFile(static, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(data)
}

func readRecords(r *http.Request, rv Records) (any, int) {
	q := r.URL.Query()
	topic := q.Get("topic")
	if topic == "" {
		return errorBody("name the topic: ?topic=<topic>&partition=<n>"), http.StatusBadRequest
	}
	p, err := strconv.ParseInt(q.Get("partition"), 10, 32)
	if err != nil || p < 0 {
		return errorBody("partition: want a partition number"), http.StatusBadRequest
	}
	query := records.Query{Topic: topic, Partition: int32(p), Limit: 20}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > rv.Max() {
			return errorBody("limit: want 1 to " + strconv.Itoa(rv.Max())), http.StatusBadRequest
		}
		query.Limit = n
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return errorBody("offset: want a non-negative offset"), http.StatusBadRequest
		}
		query.Offset = &n
	}
	if s := q.Get("timestamp"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return errorBody("timestamp: want Unix milliseconds"), http.StatusBadRequest
		}
		if query.Offset != nil {
			return errorBody("give an offset or a timestamp, not both"), http.StatusBadRequest
		}
		query.Timestamp = &n
	}
	res, err := rv.Read(r.Context(), query)
	switch {
	case errors.Is(err, records.ErrNotFound):
		return errorBody(topic + "/" + strconv.Itoa(int(p)) + ": no such topic or partition"), http.StatusNotFound
	case err != nil:
		return errorBody(err.Error()), http.StatusBadGateway
	}
	return res, http.StatusOK
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func errorBody(msg string) any { return map[string]string{"error": msg} }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) { writeJSON(w, code, errorBody(msg)) }
