package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and stops the goroutine,
// so a test can look at the failure another helper would report.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(r)
}

// A missing binary fails the test, naming `make tools` — it never skips.
func TestMissingBinaryNamesMakeTools(t *testing.T) {
	t.Setenv("KAFSCALE_TEST_BIN", t.TempDir())
	rec := &fatalRecorder{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != rec {
				panic(r)
			}
		}()
		Binary(rec, "etcd")
	}()
	if !strings.Contains(rec.msg, "etcd is missing") || !strings.Contains(rec.msg, "make tools") {
		t.Fatalf("failure message = %q, want it to name the binary and `make tools`", rec.msg)
	}
	if rec.Skipped() {
		t.Fatal("a missing binary skipped the test")
	}
}
