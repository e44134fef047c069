// Package env reads KAFSCALE_* environment variables into typed values for the config
// package of every binary (broker, operator, proxy, console). A Parser collects one error
// per bad value, each naming the variable, the value and what would be accepted, so a
// binary reports every mistake at once; Unknown finds variables a binary does not read
// (most likely typos) for its startup warning.
package env

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Parser reads variables through a lookup function (os.LookupEnv in production) and
// collects the problems it finds. A getter given a bad value records the problem and
// returns the default, so parsing goes on and reports every bad value.
type Parser struct {
	lookup func(string) (string, bool)
	errs   []error
}

// New returns a parser reading through lookup.
func New(lookup func(string) (string, bool)) *Parser { return &Parser{lookup: lookup} }

// Map is a lookup function over kv, for Parse functions given a fixed environment (tests,
// embedded platforms).
func Map(kv map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) { v, ok := kv[name]; return v, ok }
}

// Fail records a problem.
func (p *Parser) Fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

// Problems returns the problems recorded so far.
func (p *Parser) Problems() []error { return p.errs }

// Err returns nil, or an *Error listing every problem, for component ("broker", "proxy", …).
func (p *Parser) Err(component string) error {
	if len(p.errs) == 0 {
		return nil
	}
	return &Error{Component: component, Problems: p.errs}
}

// Raw returns the value with surrounding space removed; ok is false when the variable is
// unset or blank (blank means "use the default").
func (p *Parser) Raw(name string) (string, bool) {
	v, ok := p.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// Str returns the value, or def.
func (p *Parser) Str(name, def string) string {
	if v, ok := p.Raw(name); ok {
		return v
	}
	return def
}

// Secret returns the value verbatim: a credential may start or end with a space.
func (p *Parser) Secret(name string) string {
	v, _ := p.lookup(name)
	return v
}

// Required returns the value, recording a problem when it is unset or blank.
func (p *Parser) Required(name string) string {
	v, ok := p.Raw(name)
	if !ok {
		p.Fail("%s is required and not set", name)
	}
	return v
}

// Int returns a whole number from min to max, or def.
func (p *Parser) Int(name string, def, min, max int64) int64 {
	v, ok := p.Raw(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max {
		p.Fail("%s=%q: want a whole number from %d to %d", name, v, min, max)
		return def
	}
	return n
}

// Bool returns true or false (also 1/0, yes/no, on/off), or def.
func (p *Parser) Bool(name string, def bool) bool {
	v, ok := p.Raw(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	case "false", "0", "no", "off":
		return false
	}
	p.Fail("%s=%q: want true or false", name, v)
	return def
}

// Duration returns a whole number of units from min to max (in units), or def units.
func (p *Parser) Duration(name string, unit time.Duration, def, min, max int64) time.Duration {
	return time.Duration(p.Int(name, def, min, max)) * unit
}

// Millis is Duration in milliseconds with no upper bound.
func (p *Parser) Millis(name string, def, min int64) time.Duration {
	return p.Duration(name, time.Millisecond, def, min, math.MaxInt64/int64(time.Millisecond))
}

// Seconds is Duration in seconds with no upper bound.
func (p *Parser) Seconds(name string, def, min int64) time.Duration {
	return p.Duration(name, time.Second, def, min, math.MaxInt64/int64(time.Second))
}

// Fraction returns a number from 0 to 1, or def.
func (p *Parser) Fraction(name string, def float64) float64 {
	v, ok := p.Raw(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 || math.IsNaN(f) {
		p.Fail("%s=%q: want a fraction from 0 to 1", name, v)
		return def
	}
	return f
}

// List returns the comma-separated items of the value (or of def), recording a problem
// when there are none.
func (p *Parser) List(name, def string) []string {
	v := p.Str(name, def)
	out := split(v)
	if len(out) == 0 {
		p.Fail("%s=%q: want a comma-separated list", name, v)
	}
	return out
}

// OptionalList returns the comma-separated items of the value; none when unset.
func (p *Parser) OptionalList(name string) []string { return split(p.Str(name, "")) }

func split(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// URL returns an http:// or https:// URL, or "" when unset (or bad).
func (p *Parser) URL(name string) string {
	v := p.Str(name, "")
	if v != "" && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
		p.Fail("%s=%q: want an http:// or https:// URL", name, v)
		return ""
	}
	return v
}

// URLs returns a comma-separated list of http(s):// URLs with a host (etcd client URLs);
// none when unset.
func (p *Parser) URLs(name string) []string {
	out := p.OptionalList(name)
	for _, s := range out {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Fail("%s: %q is not an http(s):// etcd client URL", name, s)
		}
	}
	return out
}

// OneOf returns the value when it is one of allowed, or def.
func (p *Parser) OneOf(name, def string, allowed ...string) string {
	v := p.Str(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.Fail("%s=%q: want one of %s", name, v, strings.Join(allowed, ", "))
	return def
}

// Level returns a log level: debug, info, warn (or warning) or error, or def.
func (p *Parser) Level(name string, def slog.Level) slog.Level {
	v, ok := p.Raw(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	p.Fail("%s=%q: want debug, info, warn or error", name, v)
	return def
}

// HostPort checks that v, the value of name, is host:port (host may be empty) and returns
// its parts.
func (p *Parser) HostPort(name, v string) (string, int) {
	host, portStr, err := net.SplitHostPort(v)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil || port < 0 || port > 65535 {
		p.Fail("%s=%q: want host:port (host may be empty)", name, v)
		return "", 0
	}
	return host, port
}

// KeySegment checks that v, the value of name, can be one segment of an etcd key.
func (p *Parser) KeySegment(name, v string) {
	if v == "" || strings.ContainsAny(v, "/ ") {
		p.Fail("%s=%q: want a non-empty name without '/' or spaces", name, v)
	}
}

// Error lists every problem found in a binary's configuration.
type Error struct {
	Component string
	Problems  []error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bad %s setting(s):", len(e.Problems), e.Component)
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() []error { return e.Problems }

// Names returns every variable parse looks up, sorted, by running it once on an empty
// environment (the problems that reports are dropped).
func Names(parse func(lookup func(string) (string, bool))) []string {
	seen := map[string]bool{}
	parse(func(name string) (string, bool) { seen[name] = true; return "", false })
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Unknown returns the variables in environ ("NAME=value") that ours claims for the binary
// but that are not in known, sorted: most likely typos.
func Unknown(environ, known []string, ours func(name string) bool) []string {
	k := make(map[string]bool, len(known))
	for _, n := range known {
		k[n] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if ours(name) && !k[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// AdvertisedHost is the host to advertise for a listener on listenHost: itself, or the
// machine's host name when it listens on every interface.
func AdvertisedHost(listenHost string) string {
	if listenHost != "" && listenHost != "0.0.0.0" && listenHost != "::" {
		return listenHost
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "127.0.0.1"
}
