package testenv

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Eventually polls f every 50 ms until it returns nil, and fails the test with f's last
// error once d has passed. The deadline only bounds a hang: it asserts nothing about speed.
func Eventually(t testing.TB, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition never held within %s: %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitFor polls cond every 100 ms until it holds, and fails the test naming what it waited
// for once ctx ends. ctx only bounds a hang.
func WaitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Context returns a context that ends after d or with the test, whichever comes first.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// GrepLines returns the lines of text containing substr, for failure messages quoting a
// metrics page or a log.
func GrepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
