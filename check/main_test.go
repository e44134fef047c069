package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVolumeWritesAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run([]string{"volume", "-dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "wrote, synced and read back") {
		t.Errorf("output %q", out.String())
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Errorf("left %d files behind", len(left))
	}
}

// A path that cannot hold files (a regular file, which fails for root as for anyone).
func TestVolumeFailsWhereItCannotWrite(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"volume", "-dir", f}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d for a file as the directory, want 1 (%s)", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "cannot write in "+f) {
		t.Errorf("error %q does not say what failed", errOut.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope", "-bootstrap", "x:1"}, {"metadata"}, {"volume"}, {"bucket"}} {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		if code == 0 || errOut.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q: want a failure that says why", args, code, errOut.String())
		}
	}
}
