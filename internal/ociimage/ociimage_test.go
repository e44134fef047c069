package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hello builds testdata/hello static, as the images' binaries are built.
func hello(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func spec(bin string) Spec {
	return Spec{
		Files:        []File{{Path: "/hello", Source: bin, Mode: 0o755, Static: true}, {Path: "/usr/bin/hello", Link: "/hello"}},
		Entrypoint:   []string{"/hello"},
		Env:          []string{"GREETING=hi"},
		Labels:       map[string]string{"org.opencontainers.image.title": "hello", "org.opencontainers.image.revision": "abc"},
		Created:      time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		Architecture: "amd64",
	}
}

func TestArchiveReadsBackAsBuilt(t *testing.T) {
	bin := hello(t)
	img, err := Build(spec(bin))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hello.tar")
	refs := []string{"ghcr.io/kafscale/hello:0.1.0", "ghcr.io/kafscale/hello:abc123"}
	if err := WriteArchive(path, img, refs...); err != nil {
		t.Fatal(err)
	}
	tags, err := Tags(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tags, " ") != strings.Join(refs, " ") {
		t.Errorf("tags %v, want %v", tags, refs)
	}
	got, err := ReadArchive(path, refs[1])
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q", cfg.Config.User)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/hello" {
		t.Errorf("entrypoint %q", cfg.Config.Entrypoint)
	}
	if cfg.Config.Labels["org.opencontainers.image.title"] != "hello" || cfg.Config.Labels["org.opencontainers.image.revision"] != "abc" {
		t.Errorf("labels %v", cfg.Config.Labels)
	}
	if !contains(cfg.Config.Env, "GREETING=hi") || !contains(cfg.Config.Env, "SSL_CERT_FILE="+CACertificates) {
		t.Errorf("env %v", cfg.Config.Env)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || !cfg.Created.Time.Equal(spec(bin).Created) {
		t.Errorf("platform %s/%s created %v", cfg.OS, cfg.Architecture, cfg.Created)
	}

	want, _ := os.ReadFile(bin)
	data, err := ReadFile(got, "/hello")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) {
		t.Error("the binary in the image differs from the one built")
	}
	if err := CheckStatic(bytes.NewReader(data)); err != nil {
		t.Errorf("binary in the image: %v", err)
	}
	passwd, err := ReadFile(got, "/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(passwd), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd: %q", passwd)
	}
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/usr/bin/sh"} {
		if _, err := ReadFile(got, sh); err == nil {
			t.Errorf("image has a shell at %s", sh)
		}
	}

	entries, err := Entries(got)
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]int64{}
	links := map[string]string{}
	for _, h := range entries {
		if h.Typeflag == tar.TypeSymlink {
			links[h.Name] = h.Linkname
		}
		modes[h.Name] = h.Mode
		if !h.ModTime.Equal(spec(bin).Created) {
			t.Errorf("%s has time %v, not the commit's", h.Name, h.ModTime)
		}
		if h.Name == "home/nonroot/" && (h.Uid != NonRoot || h.Gid != NonRoot) {
			t.Errorf("home/nonroot/ is owned by %d:%d", h.Uid, h.Gid)
		}
	}
	if len(links) != 1 || links["usr/bin/hello"] != "/hello" {
		t.Errorf("symbolic links %v, want usr/bin/hello → /hello", links)
	}
	if modes["tmp/"] != 0o1777 || modes["hello"] != 0o755 {
		t.Errorf("modes: /tmp %o, /hello %o", modes["tmp/"], modes["hello"])
	}
}

func TestSameInputsSameDigestAndBytes(t *testing.T) {
	bin := hello(t)
	var sums [2][32]byte
	var digests [2]string
	for i := range 2 {
		img, err := Build(spec(bin))
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests[i] = d.String()
		path := filepath.Join(t.TempDir(), "hello.tar")
		if err := WriteArchive(path, img, "ghcr.io/kafscale/hello:0.1.0"); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		sums[i] = sha256.Sum256(b)
	}
	if digests[0] != digests[1] {
		t.Errorf("digests differ: %s, %s", digests[0], digests[1])
	}
	if sums[0] != sums[1] {
		t.Error("archives differ byte for byte")
	}

	changed := spec(bin)
	changed.Created = changed.Created.Add(time.Second)
	img, err := Build(changed)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() == digests[0] {
		t.Error("another commit time gave the same digest")
	}
}

func TestDynamicBinaryIsRefused(t *testing.T) {
	s := spec("/bin/true") // Debian's, linked against libc
	_, err := Build(s)
	if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Fatalf("Build of a dynamically linked binary: %v", err)
	}
}

func TestCABundleParses(t *testing.T) {
	rest := caBundle()
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			t.Fatalf("certificate %d: %v", n, err)
		}
		n++
	}
	if n < 100 || len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("%d certificates, %d bytes left over", n, len(rest))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
