package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/kafscale/kafscale"

// pkg is what the rules need of one `go list -json` entry.
type pkg struct {
	ImportPath string
	Name       string
	Imports    []string // direct, production code only
	Deps       []string // transitive, production code only
}

// binaries are the module's top-level directories that hold one binary each.
var binaries = []string{"broker", "operator", "proxy", "console", "check"}

// crossBinary lists the imports of another binary's packages that are allowed, by importer
// prefix: the local platform assembles the proxy and the console, and the operator drives
// brokers through their control API (a leaf contract package).
var crossBinary = map[string][]string{
	"broker/local": {"proxy/app", "proxy/config", "console/app", "console/config"},
	"operator":     {"broker/control", "broker/control/controlpb"},
}

// layers lists, per broker package, the module packages it must not depend on, directly or
// not, and why.
var layers = []struct {
	pkgs      []string
	forbidden []string
	why       string
}{
	{
		pkgs:      []string{"broker/partition", "broker/storage", "broker/object", "broker/groups", "broker/logapi", "internal/recordbatch"},
		forbidden: []string{"broker/server", "broker/app", "broker/config", "broker/local"},
		why:       "the data path knows nothing of the protocol layer or the wiring; shared contracts go in broker/logapi",
	},
	{
		pkgs:      []string{"broker/server"},
		forbidden: []string{"broker/partition", "broker/storage", "broker/object", "broker/groups", "broker/app", "broker/config", "broker/local"},
		why:       "the protocol layer reaches the data path only through broker/logapi and its other dependencies through interfaces (deps.go)",
	},
}

// leaves may depend on no module package but the ones listed.
var leaves = map[string][]string{
	"broker/logapi":  nil,
	"broker/object":  {"internal/metadata"},
	"broker/control": {"broker/control/controlpb"},
}

func TestImportRules(t *testing.T) {
	pkgs := list(t)
	if len(pkgs) < 30 {
		t.Fatalf("go list found %d packages; the module has many more", len(pkgs))
	}
	var problems []string
	for _, p := range pkgs {
		problems = append(problems, check(p, pkgs)...)
	}
	if len(problems) > 0 {
		t.Fatalf("%d import rule(s) broken (docs/architecture.md, \"Import rules\"):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
}

// check returns every rule p breaks.
func check(p pkg, all map[string]pkg) []string {
	var out []string
	from := rel(p.ImportPath)
	for _, imp := range p.Imports {
		to, ok := relOK(imp)
		if !ok {
			continue
		}
		switch {
		case under(to, "tests") && !under(from, "tests"):
			out = append(out, fmt.Sprintf("%s imports %s: only tests import test helpers", from, to))
		case all[imp].Name == "main":
			out = append(out, fmt.Sprintf("%s imports %s, a main package", from, to))
		case under(from, "internal") && binaryOf(to) != "":
			out = append(out, fmt.Sprintf("%s imports %s: internal/ is shared by the binaries and imports none of them", from, to))
		case binaryOf(from) != "" && binaryOf(to) != "" && binaryOf(from) != binaryOf(to) && !allowedCross(from, to):
			out = append(out, fmt.Sprintf("%s imports %s: a binary's packages import no other binary's (allowed: %v)", from, to, crossBinary))
		}
	}
	for _, l := range layers {
		if !slices.ContainsFunc(l.pkgs, func(s string) bool { return under(from, s) }) {
			continue
		}
		for _, d := range p.Deps {
			to, ok := relOK(d)
			if ok && slices.ContainsFunc(l.forbidden, func(s string) bool { return under(to, s) }) {
				out = append(out, fmt.Sprintf("%s depends on %s: %s", from, to, l.why))
			}
		}
	}
	if allowed, ok := leaves[from]; ok {
		for _, d := range p.Deps {
			if to, ok := relOK(d); ok && !slices.Contains(allowed, to) {
				out = append(out, fmt.Sprintf("%s depends on %s: it is a leaf contract package and may depend only on %v", from, to, allowed))
			}
		}
	}
	return out
}

func allowedCross(from, to string) bool {
	for prefix, targets := range crossBinary {
		if under(from, prefix) && slices.Contains(targets, to) {
			return true
		}
	}
	return false
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

func binaryOf(path string) string {
	for _, b := range binaries {
		if under(path, b) {
			return b
		}
	}
	return ""
}

func rel(importPath string) string { r, _ := relOK(importPath); return r }

func relOK(importPath string) (string, bool) {
	if importPath == module {
		return "", true
	}
	r, ok := strings.CutPrefix(importPath, module+"/")
	return r, ok
}

// list runs `go list -json` over the module.
func list(t *testing.T) map[string]pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	root := filepath.Join("..", "..")
	statSources(t, root)
	cmd := exec.Command(goBin, "list", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// statSources stats every Go file of the module, so `go test`'s cache, which records the
// files a test looks at but not those `go list` reads, reruns the test after any change.
func statSources(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".go") || d.Name() == "go.mod" {
			_, err = os.Stat(path)
		}
		return err
	})
	if err != nil {
		t.Fatalf("walk the module: %v", err)
	}
}

// The rules must catch what they are meant to catch: each forbidden import below is
// reported, and each allowed one is not.
func TestRulesCatchForbiddenImports(t *testing.T) {
	all := map[string]pkg{
		module + "/broker":     {ImportPath: module + "/broker", Name: "main"},
		module + "/tests/x":    {ImportPath: module + "/tests/x", Name: "x"},
		module + "/proxy/app":  {ImportPath: module + "/proxy/app", Name: "app"},
		module + "/broker/app": {ImportPath: module + "/broker/app", Name: "app"},
	}
	bad := []pkg{
		{ImportPath: module + "/broker/partition", Imports: []string{module + "/broker/server"}, Deps: []string{module + "/broker/server"}},
		{ImportPath: module + "/broker/server", Deps: []string{module + "/broker/partition"}},
		{ImportPath: module + "/broker/app", Imports: []string{module + "/tests/x"}},
		{ImportPath: module + "/proxy/server", Imports: []string{module + "/broker/app"}},
		{ImportPath: module + "/operator/controller", Imports: []string{module + "/broker/app"}},
		{ImportPath: module + "/internal/metadata", Imports: []string{module + "/proxy/app"}},
		{ImportPath: module + "/console/app", Imports: []string{module + "/broker"}},
		{ImportPath: module + "/broker/logapi", Deps: []string{module + "/internal/metadata"}},
	}
	for _, p := range bad {
		if len(check(p, all)) == 0 {
			t.Errorf("%s importing %v passed the rules", p.ImportPath, append(p.Imports, p.Deps...))
		}
	}
	good := []pkg{
		{ImportPath: module + "/broker/local", Imports: []string{module + "/proxy/app"}},
		{ImportPath: module + "/operator/controller", Imports: []string{module + "/broker/control"}, Deps: []string{module + "/broker/control", module + "/broker/control/controlpb"}},
		{ImportPath: module + "/broker/partition", Imports: []string{module + "/broker/logapi"}, Deps: []string{module + "/broker/logapi"}},
		{ImportPath: module + "/tests/y", Imports: []string{module + "/tests/x", module + "/broker/app"}},
	}
	for _, p := range good {
		if problems := check(p, all); len(problems) > 0 {
			t.Errorf("an allowed import was refused: %v", problems)
		}
	}
}
