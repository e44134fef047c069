package env

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every bad value is reported, each naming its variable and value; the getters return the
// defaults for them so parsing goes on.
func TestBadValuesAreNamedAndAllReported(t *testing.T) {
	p := New(Map(map[string]string{
		"K_INT": "12x", "K_BOOL": "maybe", "K_MS": "-1", "K_FRAC": "1.5", "K_LIST": " , ",
		"K_URL": "ftp://x", "K_LEVEL": "loud", "K_ADDR": "nohost", "K_SEG": "a/b", "K_ONE": "c",
		"K_URLS": "http://ok:1,etcd:2379",
	}))
	if got := p.Int("K_INT", 7, 0, 10); got != 7 {
		t.Errorf("Int on a bad value = %d, want the default", got)
	}
	if got := p.Bool("K_BOOL", true); !got {
		t.Error("Bool on a bad value did not return the default")
	}
	if got := p.Millis("K_MS", 5, 0); got != 5*time.Millisecond {
		t.Errorf("Millis on a bad value = %v", got)
	}
	p.Fraction("K_FRAC", 0.5)
	p.List("K_LIST", "")
	p.URL("K_URL")
	if got := p.Level("K_LEVEL", slog.LevelWarn); got != slog.LevelWarn {
		t.Errorf("Level on a bad value = %v", got)
	}
	p.HostPort("K_ADDR", "nohost")
	p.KeySegment("K_SEG", "a/b")
	p.OneOf("K_ONE", "a", "a", "b")
	p.URLs("K_URLS")
	p.Required("K_MISSING")
	err := p.Err("test")
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 12 {
		t.Fatalf("err = %v; want 12 problems", err)
	}
	for _, want := range []string{`K_INT="12x"`, `K_BOOL="maybe"`, `K_MS="-1"`, `K_FRAC="1.5"`, "K_LIST", `K_URL="ftp://x"`, `K_LEVEL="loud"`, `K_ADDR="nohost"`, `K_SEG="a/b"`, `K_ONE="c"`, `"etcd:2379"`, "K_MISSING is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if !strings.HasPrefix(err.Error(), "12 bad test setting(s):") {
		t.Errorf("error %q", err)
	}
}

func TestGoodValuesAndDefaults(t *testing.T) {
	p := New(Map(map[string]string{
		"K_INT": " 9 ", "K_BOOL": "off", "K_SEC": "3", "K_LIST": "a, b,,c", "K_LEVEL": "WARNING", "K_BLANK": "  ",
		"K_SECRET": " pw ", "K_DUR": "600000",
	}))
	if p.Int("K_INT", 0, 0, 10) != 9 || p.Bool("K_BOOL", true) || p.Seconds("K_SEC", 1, 1) != 3*time.Second {
		t.Error("a good value was not read")
	}
	if got := p.List("K_LIST", ""); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("List = %q", got)
	}
	if p.Level("K_LEVEL", slog.LevelInfo) != slog.LevelWarn {
		t.Error("WARNING is not warn")
	}
	if p.Str("K_BLANK", "def") != "def" || p.Str("K_UNSET", "def") != "def" {
		t.Error("a blank or unset variable did not take the default")
	}
	if p.Secret("K_SECRET") != " pw " {
		t.Error("a secret was not kept verbatim")
	}
	if p.Duration("K_DUR", time.Millisecond, 1, 1, 600000) != 10*time.Minute {
		t.Error("Duration")
	}
	if err := p.Err("test"); err != nil {
		t.Fatal(err)
	}
}

func TestNamesAndUnknown(t *testing.T) {
	names := Names(func(lookup func(string) (string, bool)) {
		p := New(lookup)
		p.Str("K_B", "")
		p.Int("K_A", 1, 0, 2)
	})
	if !slices.Equal(names, []string{"K_A", "K_B"}) {
		t.Fatalf("Names = %q", names)
	}
	environ := []string{"K_A=1", "K_TYPO=2", "OTHER_X=3", "K_B=", "K_ALSO_TYPO"}
	got := Unknown(environ, names, func(n string) bool { return strings.HasPrefix(n, "K_") })
	if !slices.Equal(got, []string{"K_ALSO_TYPO", "K_TYPO"}) {
		t.Fatalf("Unknown = %q", got)
	}
}
