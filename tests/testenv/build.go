package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Build compiles the main package pkg, a path relative to the repository root such as
// "./broker", into the binary dst.
func Build(pkg, dst string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", dst, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return nil
}

// Program is a main package of this repository built once per test binary, on first use.
type Program struct {
	// Pkg is the package path relative to the repository root, such as "./broker".
	Pkg string

	once sync.Once
	path string
	err  error
}

// Path builds the program on first use and returns its binary; a failed build fails t.
func (p *Program) Path(t testing.TB) string {
	t.Helper()
	p.once.Do(func() {
		dir, err := os.MkdirTemp("", "kafscale-"+filepath.Base(p.Pkg)+"-bin-")
		if err != nil {
			p.err = err
			return
		}
		p.path = filepath.Join(dir, filepath.Base(p.Pkg))
		p.err = Build(p.Pkg, p.path)
	})
	if p.err != nil {
		t.Fatal(p.err)
	}
	return p.path
}

// Remove deletes the built binary, if any; call it from TestMain after m.Run.
func (p *Program) Remove() {
	if p.path != "" {
		_ = os.RemoveAll(filepath.Dir(p.path))
	}
}
