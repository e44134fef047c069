package testenv

import (
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
