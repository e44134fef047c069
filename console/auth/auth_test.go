package auth

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func init() { keyIterations = 1000 } // the derivation's cost is not what these tests check

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func newGuard(t *testing.T, user, pass string, now *time.Time, trusted ...string) *Guard {
	t.Helper()
	var pfx []netip.Prefix
	for _, s := range trusted {
		pfx = append(pfx, netip.MustParsePrefix(s))
	}
	g, err := New(Options{Username: user, Password: pass, Scope: "default/kafscale", SessionTTL: time.Hour,
		CookiePath: "/ui/", Trusted: pfx, Limiter: NewLimiter(3, time.Minute), Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

type loginReq struct {
	user, pass string
	remote     string
	xff, xfp   string
	cookies    []*http.Cookie
}

func login(g *Guard, l loginReq) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/ui/auth/login", strings.NewReader(`{"username":"`+l.user+`","password":"`+l.pass+`"}`))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = l.remote
	if r.RemoteAddr == "" {
		r.RemoteAddr = "10.0.0.9:4000"
	}
	if l.xff != "" {
		r.Header.Set("X-Forwarded-For", l.xff)
	}
	if l.xfp != "" {
		r.Header.Set("X-Forwarded-Proto", l.xfp)
	}
	for _, c := range l.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	g.Login(w, r)
	return w
}

func cookieNamed(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func protected(g *Guard, cookies ...*http.Cookie) int {
	r := httptest.NewRequest(http.MethodGet, "/ui/api/overview", nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	g.Require(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })).ServeHTTP(w, r)
	return w.Code
}

func TestCheck(t *testing.T) {
	c, err := NewCredentials("admin", "s3cret", "ns/c")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		u, p string
		ok   bool
	}{{"admin", "s3cret", true}, {"admin", "s3cre", false}, {"admin", "s3cret ", false}, {"Admin", "s3cret", false}, {"", "", false}, {"admin", "", false}} {
		if got := c.Check(tc.u, tc.p); got != tc.ok {
			t.Errorf("Check(%q, %q) = %v", tc.u, tc.p, got)
		}
	}
	if _, err := NewCredentials("admin", "", "ns/c"); err == nil {
		t.Error("a login without a password was accepted")
	}
}

// A session made by one replica is accepted by another with the same login, refused by one
// with another password, and by every replica once expired.
func TestSessionsAcrossReplicasAndExpiry(t *testing.T) {
	now := t0
	a := newGuard(t, "admin", "pw", &now)
	b := newGuard(t, "admin", "pw", &now)
	other := newGuard(t, "admin", "other", &now)
	w := login(a, loginReq{user: "admin", pass: "pw"})
	if w.Code != http.StatusNoContent {
		t.Fatalf("login = %d %s", w.Code, w.Body)
	}
	s := cookieNamed(w, SessionCookie)
	if s == nil || !s.HttpOnly || s.SameSite != http.SameSiteStrictMode || s.Path != "/ui/" || s.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/, not Secure over plain HTTP", s)
	}
	if got := protected(b, s); got != http.StatusOK {
		t.Errorf("the other replica answered %d to the session", got)
	}
	if got := protected(other, s); got != http.StatusUnauthorized {
		t.Errorf("a replica with another password answered %d", got)
	}
	now = t0.Add(time.Hour + time.Second)
	if got := protected(b, s); got != http.StatusUnauthorized {
		t.Errorf("expired session: %d, want 401", got)
	}
}

func TestForgedCookiesAreRefused(t *testing.T) {
	now := t0
	g := newGuard(t, "admin", "pw", &now)
	s := cookieNamed(login(g, loginReq{user: "admin", pass: "pw"}), SessionCookie)
	d := cookieNamed(login(g, loginReq{user: "admin", pass: "pw"}), DeviceCookie)
	payload, sig, _ := strings.Cut(s.Value, ".")
	tampered := []byte(payload)
	tampered[3] ^= 1
	for name, v := range map[string]string{
		"empty":             "",
		"no signature":      payload,
		"bad signature":     payload + "." + sig[:len(sig)-2] + "AA",
		"changed payload":   string(tampered) + "." + sig,
		"device as session": d.Value,
		"garbage":           "x.y",
	} {
		if got := protected(g, &http.Cookie{Name: SessionCookie, Value: v}); got != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, got)
		}
	}
	if got := protected(g); got != http.StatusUnauthorized {
		t.Errorf("no cookie: %d, want 401", got)
	}
}

func TestNoLoginConfigured(t *testing.T) {
	now := t0
	g := newGuard(t, "", "", &now)
	if g.Configured() {
		t.Fatal("configured without a login")
	}
	if w := login(g, loginReq{user: "", pass: ""}); w.Code != http.StatusServiceUnavailable {
		t.Errorf("login = %d, want 503", w.Code)
	}
	if got := protected(g, &http.Cookie{Name: SessionCookie, Value: "x.y"}); got != http.StatusServiceUnavailable {
		t.Errorf("API = %d, want 503", got)
	}
}

// After the burst of failures a client is refused (429) even with the right password; a
// client at another address (behind a trusted Ingress) and a browser that logged in before
// (device cookie) still log in; forwarded headers from an untrusted peer are ignored.
func TestLoginRateLimit(t *testing.T) {
	now := t0
	g := newGuard(t, "admin", "pw", &now, "10.0.0.0/24")
	ok := login(g, loginReq{user: "admin", pass: "pw", xff: "203.0.113.5"})
	device := cookieNamed(ok, DeviceCookie)
	if ok.Code != http.StatusNoContent || device == nil {
		t.Fatalf("first login = %d, device cookie %v", ok.Code, device)
	}
	for i := 0; i < 3; i++ {
		if w := login(g, loginReq{user: "admin", pass: "guess", xff: "198.51.100.7"}); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d = %d, want 401", i, w.Code)
		}
	}
	w := login(g, loginReq{user: "admin", pass: "pw", xff: "198.51.100.7"})
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("attacker's address after its burst = %d (Retry-After %q), want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if w := login(g, loginReq{user: "admin", pass: "pw", xff: "203.0.113.5"}); w.Code != http.StatusNoContent {
		t.Errorf("another client behind the same Ingress = %d, want 204", w.Code)
	}
	// The same attacker now spoofs X-Forwarded-For from an untrusted peer: its budget is
	// the peer's, whatever the header says.
	for i := 0; i < 3; i++ {
		login(g, loginReq{remote: "192.0.2.1:5000", user: "admin", pass: "guess", xff: "192.0.2.100" + string(rune('0'+i))})
	}
	if w := login(g, loginReq{remote: "192.0.2.1:5000", user: "admin", pass: "pw", xff: "192.0.2.200"}); w.Code != http.StatusTooManyRequests {
		t.Errorf("untrusted peer rotating X-Forwarded-For = %d, want 429", w.Code)
	}
	// Every client shares one address (an Ingress that is not trusted) and the attacker has
	// spent it; a browser that logged in before still gets in.
	if w := login(g, loginReq{remote: "192.0.2.1:5000", user: "admin", pass: "pw", cookies: []*http.Cookie{device}}); w.Code != http.StatusNoContent {
		t.Errorf("browser with a device cookie at the spent address = %d, want 204", w.Code)
	}
	// The budget refills.
	now = now.Add(time.Minute)
	if w := login(g, loginReq{user: "admin", pass: "pw", xff: "198.51.100.7"}); w.Code != http.StatusNoContent {
		t.Errorf("after a refill = %d, want 204", w.Code)
	}
}

func TestClientInfo(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name, remote, xff, xfp string
		addr                   string
		https                  bool
	}{
		{"direct", "192.0.2.1:1", "", "", "192.0.2.1", false},
		{"untrusted headers ignored", "192.0.2.1:1", "1.2.3.4", "https", "192.0.2.1", false},
		{"trusted ingress", "10.1.1.1:1", "1.2.3.4", "https", "1.2.3.4", true},
		{"trusted chain", "10.1.1.1:1", "5.6.7.8, 1.2.3.4, 10.2.2.2", "http", "1.2.3.4", false},
		{"trusted without header", "10.1.1.1:1", "", "", "10.1.1.1", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if tc.xfp != "" {
			r.Header.Set("X-Forwarded-Proto", tc.xfp)
		}
		addr, https := ClientInfo(r, trusted)
		if addr != tc.addr || https != tc.https {
			t.Errorf("%s: %s https=%v, want %s https=%v", tc.name, addr, https, tc.addr, tc.https)
		}
	}
}

// Cookies are Secure when the login came over HTTPS through a trusted Ingress.
func TestSecureCookieBehindTrustedIngress(t *testing.T) {
	now := t0
	g := newGuard(t, "admin", "pw", &now, "10.0.0.0/8")
	w := login(g, loginReq{user: "admin", pass: "pw", xfp: "https", xff: "1.2.3.4"})
	if c := cookieNamed(w, SessionCookie); c == nil || !c.Secure {
		t.Errorf("session cookie %+v, want Secure", c)
	}
	w = login(g, loginReq{remote: "192.0.2.1:1", user: "admin", pass: "pw", xfp: "https"})
	if c := cookieNamed(w, SessionCookie); c == nil || c.Secure {
		t.Errorf("untrusted X-Forwarded-Proto made the cookie %+v", c)
	}
}

func TestLogoutDeletesTheCookie(t *testing.T) {
	now := t0
	g := newGuard(t, "admin", "pw", &now)
	r := httptest.NewRequest(http.MethodPost, "/ui/auth/logout", nil)
	w := httptest.NewRecorder()
	g.Logout(w, r)
	c := cookieNamed(w, SessionCookie)
	if w.Code != http.StatusNoContent || c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("logout = %d, cookie %+v: want 204 and the cookie deleted", w.Code, c)
	}
}
