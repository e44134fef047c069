// Package auth is the console's login: credential checks in constant time, signed session
// cookies that every replica accepts, and a login rate limit that one attacker cannot turn
// into a lockout of everyone behind the same Ingress address.
package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// keyIterations makes the session key costly to derive (about a quarter of a second once
// per process), so a captured cookie does not let anyone test password guesses quickly
// offline: each guess costs the same derivation.
var keyIterations = 600_000 // lowered by tests through SetKeyIterationsForTest

// Credentials hold the login and the key sessions are signed with. The key is derived from
// the login and the cluster's name only, so every replica with the same Secret derives the
// same key (a session made on one is valid on all), and changing the password ends every
// session.
type Credentials struct {
	user, pass [sha256.Size]byte // digests: compared in constant time whatever the lengths
	username   string
	key        []byte
}

// NewCredentials derives the signing key of a login. scope names the cluster
// (namespace/cluster), so the consoles of two clusters sharing a password do not accept
// each other's cookies.
func NewCredentials(username, password, scope string) (*Credentials, error) {
	if username == "" || password == "" {
		return nil, errors.New("a login needs both a username and a password")
	}
	key, err := pbkdf2.Key(sha256.New, username+"\x00"+password, []byte("kafscale-console-session/"+scope), keyIterations, 32)
	if err != nil {
		return nil, err
	}
	return &Credentials{user: sha256.Sum256([]byte(username)), pass: sha256.Sum256([]byte(password)), username: username, key: key}, nil
}

// Check reports whether username and password are the login. Both are always compared, in
// time independent of where they differ.
func (c *Credentials) Check(username, password string) bool {
	u := sha256.Sum256([]byte(username))
	p := sha256.Sum256([]byte(password))
	okU := subtle.ConstantTimeCompare(u[:], c.user[:])
	okP := subtle.ConstantTimeCompare(p[:], c.pass[:])
	return okU&okP == 1
}

// Token kinds, signed with distinct prefixes so one is never accepted as the other.
const (
	kindSession = "session"
	// kindDevice marks a browser that logged in before: its failed logins are limited on
	// their own budget instead of the shared one of its address (see Limiter).
	kindDevice = "device"
)

type claims struct {
	User    string `json:"u"`
	Expires int64  `json:"exp"`
	Nonce   string `json:"n"`
}

// issue returns a signed token of kind for the login, valid until now+ttl.
func (c *Credentials) issue(kind string, now time.Time, ttl time.Duration) string {
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	payload, _ := json.Marshal(claims{User: c.username, Expires: now.Add(ttl).Unix(), Nonce: base64.RawURLEncoding.EncodeToString(nonce)})
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(c.sign(kind, p))
}

func (c *Credentials) sign(kind, payload string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(kind + "|" + payload))
	return m.Sum(nil)
}

// verify reports whether token is a valid, unexpired token of kind for the login.
func (c *Credentials) verify(kind, token string, now time.Time) bool {
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, c.sign(kind, p)) {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return false
	}
	var cl claims
	if err := json.Unmarshal(raw, &cl); err != nil {
		return false
	}
	return cl.User == c.username && now.Unix() < cl.Expires
}

// SetKeyIterationsForTest lowers the key derivation's cost in tests of other packages,
// which make many logins; it returns a function that restores it.
func SetKeyIterationsForTest(n int) (restore func()) {
	old := keyIterations
	keyIterations = n
	return func() { keyIterations = old }
}
