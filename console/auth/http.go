package auth

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Cookie names. The session cookie lasts Options.SessionTTL; the device cookie, which only
// gives a browser its own login budget (see Limiter), lasts deviceTTL.
const (
	SessionCookie = "kafscale_console_session"
	DeviceCookie  = "kafscale_console_device"
	deviceTTL     = 30 * 24 * time.Hour
)

// Options configure a Guard.
type Options struct {
	// Username and Password are the login; both empty means none is configured and every
	// protected request is refused with 503.
	Username, Password string
	// Scope names the cluster (namespace/cluster) in the signing key.
	Scope      string
	SessionTTL time.Duration
	// CookiePath is the console's base path: its cookies are sent to nothing else.
	CookiePath string
	// Trusted are the peers whose X-Forwarded-For and X-Forwarded-Proto are believed.
	Trusted []netip.Prefix
	Limiter *Limiter
	// Logins counts login attempts by result (success, failure, limited, unconfigured).
	Logins *prometheus.CounterVec
	// Now defaults to time.Now.
	Now func() time.Time
}

// Guard serves login, logout and the session status, and protects the API.
type Guard struct {
	o     Options
	creds *Credentials // nil: no login configured
}

// New makes a Guard; deriving the signing key takes a moment.
func New(o Options) (*Guard, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logins == nil {
		o.Logins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unused"}, []string{"result"})
	}
	g := &Guard{o: o}
	if o.Username != "" || o.Password != "" {
		c, err := NewCredentials(o.Username, o.Password, o.Scope)
		if err != nil {
			return nil, err
		}
		g.creds = c
	}
	return g, nil
}

// Configured reports whether a login is set.
func (g *Guard) Configured() bool { return g.creds != nil }

// Authenticated reports whether r carries a valid session cookie.
func (g *Guard) Authenticated(r *http.Request) bool {
	if g.creds == nil {
		return false
	}
	c, err := r.Cookie(SessionCookie)
	return err == nil && g.creds.verify(kindSession, c.Value, g.o.Now())
}

// Require refuses requests without a valid session: 503 when no login is configured, 401
// otherwise.
func (g *Guard) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.creds == nil {
			writeError(w, http.StatusServiceUnavailable, "no login is configured: set KAFSCALE_UI_USERNAME and KAFSCALE_UI_PASSWORD")
			return
		}
		if !g.Authenticated(r) {
			writeError(w, http.StatusUnauthorized, "login required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Status answers GET with whether a login is configured and whether r is logged in: what
// the login page needs, so it is served without a session.
func (g *Guard) Status(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	ok := g.Authenticated(r)
	st := struct {
		LoginConfigured bool    `json:"loginConfigured"`
		Authenticated   bool    `json:"authenticated"`
		Username        *string `json:"username"`
	}{LoginConfigured: g.creds != nil, Authenticated: ok}
	if ok {
		st.Username = &g.o.Username
	}
	writeJSON(w, http.StatusOK, st)
}

// Login answers POST {"username":…,"password":…} (application/json): 204 with a session
// cookie, 401 for a wrong login, 429 when the client's failure budget is spent, 503 when no
// login is configured.
func (g *Guard) Login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if g.creds == nil {
		g.o.Logins.WithLabelValues("unconfigured").Inc()
		writeError(w, http.StatusServiceUnavailable, "no login is configured: set KAFSCALE_UI_USERNAME and KAFSCALE_UI_PASSWORD")
		return
	}
	// A JSON body cannot be sent by a plain HTML form of another site.
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "send the login as application/json")
		return
	}
	var body struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "the login must be a JSON object with username and password")
		return
	}
	now := g.o.Now()
	addr, https := ClientInfo(r, g.o.Trusted)
	key := "addr:" + addr
	if c, err := r.Cookie(DeviceCookie); err == nil && g.creds.verify(kindDevice, c.Value, now) {
		key = "device:" + c.Value
	}
	if ok, wait := g.o.Limiter.Allow(key, now); !ok {
		g.o.Logins.WithLabelValues("limited").Inc()
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
		writeError(w, http.StatusTooManyRequests, "too many failed logins: wait and try again")
		return
	}
	if !g.creds.Check(body.Username, body.Password) {
		g.o.Limiter.Fail(key, now)
		g.o.Logins.WithLabelValues("failure").Inc()
		writeError(w, http.StatusUnauthorized, "wrong username or password")
		return
	}
	g.o.Logins.WithLabelValues("success").Inc()
	http.SetCookie(w, g.cookie(SessionCookie, g.creds.issue(kindSession, now, g.o.SessionTTL), g.o.SessionTTL, https))
	http.SetCookie(w, g.cookie(DeviceCookie, g.creds.issue(kindDevice, now, deviceTTL), deviceTTL, https))
	w.WriteHeader(http.StatusNoContent)
}

// Logout answers POST by deleting the session cookie (204). Sessions are not stored
// anywhere, so a copy of the cookie taken before stays valid until it expires; changing
// the password ends every session at once.
func (g *Guard) Logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	_, https := ClientInfo(r, g.o.Trusted)
	c := g.cookie(SessionCookie, "", 0, https)
	c.MaxAge = -1
	http.SetCookie(w, c)
	w.WriteHeader(http.StatusNoContent)
}

func (g *Guard) cookie(name, value string, ttl time.Duration, secure bool) *http.Cookie {
	path := g.o.CookiePath
	if path == "" {
		path = "/"
	}
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: int(ttl.Seconds()),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode}
}

// ClientInfo returns the client's address and whether it connected over HTTPS. Forwarded
// headers count only when the TCP peer is trusted (an Ingress controller): then the client
// is the right-most X-Forwarded-For address that is not itself trusted, and the scheme is
// X-Forwarded-Proto. Headers from anyone else are ignored, so they cannot be forged.
func ClientInfo(r *http.Request, trusted []netip.Prefix) (addr string, https bool) {
	https = r.TLS != nil
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer.Unmap(), trusted) {
		return host, https
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		first, _, _ := strings.Cut(p, ",")
		https = strings.EqualFold(strings.TrimSpace(first), "https")
	}
	client := host
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap().String()
		if !isTrusted(a.Unmap(), trusted) {
			break
		}
	}
	return client, https
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
