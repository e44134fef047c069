package bench

import (
	"fmt"
	"log"
	"os"
	"sync"
	"testing"
)

// ProgramTB lets a main program use tests/testenv and tests/brokertest, which take a
// testing.TB: temporary directories under Dir, cleanups run by Close in reverse order, and
// Fatal unwinding the calling goroutine through a panic that Run recovers (call Fatal only
// from the goroutine running Run). Methods the helpers do not use are left to the embedded
// nil interface and panic.
type ProgramTB struct {
	testing.TB
	Dir string

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

type fatalError struct{ msg string }

func (*ProgramTB) Helper()      {}
func (*ProgramTB) Name() string { return "bench" }

func (p *ProgramTB) Logf(format string, args ...any) { log.Printf(format, args...) }
func (p *ProgramTB) Log(args ...any)                 { log.Print(args...) }

func (p *ProgramTB) Errorf(format string, args ...any) {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
	log.Printf("ERROR: "+format, args...)
}

func (p *ProgramTB) Fatalf(format string, args ...any) {
	p.Errorf(format, args...)
	panic(fatalError{fmt.Sprintf(format, args...)})
}

func (p *ProgramTB) Fatal(args ...any) { p.Fatalf("%s", fmt.Sprint(args...)) }

func (p *ProgramTB) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

func (p *ProgramTB) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

func (p *ProgramTB) TempDir() string {
	dir, err := os.MkdirTemp(p.Dir, "tmp-")
	if err != nil {
		p.Fatalf("temp dir: %v", err)
	}
	p.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Run calls f, turning a Fatal inside it into an error.
func (p *ProgramTB) Run(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%s", fe.msg)
		}
	}()
	return f()
}

// Close runs the cleanups, newest first.
func (p *ProgramTB) Close() {
	p.mu.Lock()
	fs := p.cleanups
	p.cleanups = nil
	p.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
