// Package images tests `make images`: the archives it writes, read back without a container
// engine, and its reproducibility.
package images

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kafscale/kafscale/internal/ociimage"
)

const appVersion = "0.1.0" // Chart.yaml appVersion; product images are tagged with it

func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// makeImages runs `make images` into a fresh directory.
func makeImages(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "-C", root(t), "images", "IMAGES_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make images: %v\n%s", err, out)
	}
	return dir
}

func git(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", root(t)}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// want lists the archives `make images` must write: one per main package at the top of the
// repository (a new binary without an image fails here), plus etcd and versitygw.
func want(t *testing.T) map[string]string { // archive → entrypoint
	t.Helper()
	mains, err := filepath.Glob(filepath.Join(root(t), "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	w := map[string]string{"etcd.tar": "/usr/local/bin/etcd", "versitygw.tar": "/usr/local/bin/versitygw"}
	for _, m := range mains {
		b := filepath.Base(filepath.Dir(m))
		if strings.HasPrefix(b, ".") || strings.HasPrefix(b, "_") {
			continue // ignored by the go command, as by ./...
		}
		w["kafscale-"+b+".tar"] = "/kafscale-" + b
	}
	for _, must := range []string{"kafscale-operator.tar", "kafscale-broker.tar", "kafscale-check.tar"} {
		if _, ok := w[must]; !ok {
			t.Fatalf("%s: its main package is missing", must)
		}
	}
	return w
}

func TestMakeImages(t *testing.T) {
	commit := git(t, "rev-parse", "HEAD")
	tag := commit[:12]
	if git(t, "status", "--porcelain", "--untracked-files=no") != "" {
		commit, tag = commit+"-dirty", tag+"-dirty"
	}
	first, second := makeImages(t), makeImages(t)

	archives, _ := filepath.Glob(filepath.Join(first, "*.tar"))
	var got []string
	for _, a := range archives {
		got = append(got, filepath.Base(a))
	}
	w := want(t)
	var wantNames []string
	for a := range w {
		wantNames = append(wantNames, a)
	}
	sort.Strings(wantNames)
	if strings.Join(got, " ") != strings.Join(wantNames, " ") {
		t.Fatalf("archives %v, want %v", got, wantNames)
	}

	env := readEnv(t, filepath.Join(first, "images.env"))
	if env["IMAGE_TAG"] != tag || env["APP_VERSION"] != appVersion {
		t.Errorf("images.env: %v", env)
	}

	for _, name := range wantNames {
		t.Run(name, func(t *testing.T) {
			a, b := filepath.Join(first, name), filepath.Join(second, name)
			tags, err := ociimage.Tags(a)
			if err != nil {
				t.Fatal(err)
			}
			product := strings.HasPrefix(name, "kafscale-")
			if product {
				repo := "ghcr.io/kafscale/" + strings.TrimSuffix(name, ".tar")
				if strings.Join(tags, " ") != repo+":"+appVersion+" "+repo+":"+tag {
					t.Errorf("tags %v", tags)
				}
			} else if len(tags) != 1 || !strings.HasPrefix(tags[0], "ghcr.io/kafscale/"+strings.TrimSuffix(name, ".tar")+":v") {
				t.Errorf("tags %v", tags)
			}
			if !contains(env, tags[len(tags)-1]) {
				t.Errorf("images.env does not name %s", tags[len(tags)-1])
			}

			img, err := ociimage.ReadArchive(a, tags[0])
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Config.User != "65532:65532" {
				t.Errorf("user %q, want 65532:65532", cfg.Config.User)
			}
			if len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != w[name] {
				t.Errorf("entrypoint %q, want [%s]", cfg.Config.Entrypoint, w[name])
			}
			l := cfg.Config.Labels
			for _, k := range []string{"title", "description", "version", "created", "source", "licenses"} {
				if l["org.opencontainers.image."+k] == "" {
					t.Errorf("label org.opencontainers.image.%s is missing", k)
				}
			}
			if l["org.opencontainers.image.revision"] != commit {
				t.Errorf("revision label %q, want %q", l["org.opencontainers.image.revision"], commit)
			}
			if product && l["org.opencontainers.image.version"] != appVersion {
				t.Errorf("version label %q", l["org.opencontainers.image.version"])
			}
			bin, err := ociimage.ReadFile(img, w[name])
			if err != nil {
				t.Fatal(err)
			}
			if err := ociimage.CheckStatic(bytes.NewReader(bin)); err != nil {
				t.Errorf("%s: %v", w[name], err)
			}
			for _, sh := range []string{"/bin/sh", "/bin/bash", "/usr/bin/sh", "/bin/busybox"} {
				if _, err := ociimage.ReadFile(img, sh); err == nil {
					t.Errorf("image has a shell at %s", sh)
				}
			}

			img2, err := ociimage.ReadArchive(b, tags[0])
			if err != nil {
				t.Fatal(err)
			}
			d1, _ := img.Digest()
			d2, _ := img2.Digest()
			if d1 != d2 {
				t.Errorf("two builds of the same commit: digests %s and %s", d1, d2)
			}
			if sum(t, a) != sum(t, b) {
				t.Error("two builds of the same commit: the archives differ")
			}
		})
	}
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), "=")
		if !ok {
			t.Fatalf("images.env line %q", s.Text())
		}
		env[k] = v
	}
	return env
}

func contains(env map[string]string, v string) bool {
	for _, x := range env {
		if x == v {
			return true
		}
	}
	return false
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
