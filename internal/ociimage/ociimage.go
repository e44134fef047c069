// Package ociimage assembles minimal container images around static Go binaries without a
// container engine, and writes them as docker-archive tarballs (what `docker save` writes),
// which `docker load`, `podman load` and `kind load image-archive` all read.
//
// An image is one layer: the files given, plus /etc/passwd and /etc/group naming the
// non-root user 65532, /tmp (1777), /home/nonroot and the Mozilla root certificates (from
// golang.org/x/crypto/x509roots/fallback, pinned in go.mod) in /etc/ssl/certs. No shell.
//
// The same inputs always give the same digest: every timestamp is Spec.Created, entries are
// sorted, owners are numeric, and the layer is compressed by the Go toolchain's gzip.
//
// It lives in internal/ because it serves the build tools (internal/tools/images) and
// their tests, not one binary.
package ociimage

import (
	"archive/tar"
	"bytes"
	"cmp"
	"debug/elf"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// NonRoot is the user and group every image runs as (the chart's runAsUser/runAsGroup).
const NonRoot = 65532

// CACertificates is where the root certificates are written (Go's crypto/x509 looks there).
const CACertificates = "/etc/ssl/certs/ca-certificates.crt"

// File is one regular file of an image. Static marks an executable that must be a statically
// linked ELF binary: Build refuses a dynamically linked one, which would fail to start in an
// image without a C library ("no such file or directory").
type File struct {
	Path   string // absolute path in the image
	Source string // file on the host to copy
	Link   string // instead of Source: the file is a symbolic link to Link
	Mode   int64  // permission bits
	Static bool
}

// Spec describes an image.
type Spec struct {
	Files      []File
	Entrypoint []string
	Env        []string
	Labels     map[string]string
	// Created is the image's creation time and the modification time of every file;
	// the commit's time keeps builds of the same commit identical.
	Created time.Time
	// Architecture is the image's platform (GOARCH); the OS is always linux.
	Architecture string
	// User is the image's "uid:gid"; empty means NonRoot. Only the kind node image's
	// control-plane and node images run as root (kubeadm gives their pods no runAsUser).
	User string
}

// Build assembles the image. The files are read now; the image holds them in memory.
func Build(spec Spec) (v1.Image, error) {
	if len(spec.Entrypoint) == 0 {
		return nil, errors.New("image has no entrypoint")
	}
	if spec.Architecture == "" {
		return nil, errors.New("image has no architecture")
	}
	layerTar, err := layer(spec)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.DockerLayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: l,
		History: v1.History{
			Created:   v1.Time{Time: spec.Created},
			CreatedBy: "kafscale internal/ociimage",
			Comment:   "static binary, non-root user, CA certificates",
		},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: spec.Created}
	cfg.OS = "linux"
	cfg.Architecture = spec.Architecture
	cfg.Config = v1.Config{
		User:       cmp.Or(spec.User, fmt.Sprintf("%d:%d", NonRoot, NonRoot)),
		Entrypoint: spec.Entrypoint,
		Env:        append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=" + CACertificates}, spec.Env...),
		WorkingDir: "/",
		Labels:     spec.Labels,
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	// Docker's media types: `docker load` of older engines refuses OCI manifests in archives.
	return mutate.MediaType(img, types.DockerManifestSchema2), nil
}

// entry is one tar entry of the layer.
type entry struct {
	hdr  tar.Header
	data []byte
}

// layer writes the layer's uncompressed tar: directories first as their parents, then
// everything sorted by path.
func layer(spec Spec) ([]byte, error) {
	mtime := spec.Created.UTC()
	entries := map[string]entry{}
	var dir func(p string, mode int64, uid int)
	dir = func(p string, mode int64, uid int) {
		p = strings.TrimSuffix(path.Clean(p), "/")
		if p == "" || p == "/" || p == "." {
			return
		}
		if _, ok := entries[p]; ok {
			return
		}
		dir(path.Dir(p), 0o755, 0)
		entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: mtime}}
	}
	add := func(p string, hdr tar.Header, data []byte) error {
		p = path.Clean(p)
		if !path.IsAbs(p) {
			return fmt.Errorf("%s: image paths must be absolute", p)
		}
		if _, ok := entries[p]; ok {
			return fmt.Errorf("%s: given twice", p)
		}
		dir(path.Dir(p), 0o755, 0)
		hdr.Name, hdr.ModTime = strings.TrimPrefix(p, "/"), mtime
		entries[p] = entry{hdr: hdr, data: data}
		return nil
	}
	file := func(p string, mode int64, data []byte) error {
		return add(p, tar.Header{Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data))}, data)
	}

	dir("/tmp", 0o1777, 0)
	dir("/home/nonroot", 0o755, NonRoot)
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRoot, NonRoot)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRoot)
	for _, f := range []struct {
		p    string
		data []byte
	}{{"/etc/passwd", []byte(passwd)}, {"/etc/group", []byte(group)}, {CACertificates, caBundle()}} {
		if err := file(f.p, 0o644, f.data); err != nil {
			return nil, err
		}
	}
	for _, f := range spec.Files {
		if f.Link != "" {
			if err := add(f.Path, tar.Header{Typeflag: tar.TypeSymlink, Linkname: f.Link, Mode: 0o777}, nil); err != nil {
				return nil, err
			}
			continue
		}
		data, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, err
		}
		if f.Static {
			if err := CheckStatic(bytes.NewReader(data)); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Source, err)
			}
		}
		if err := file(f.Path, f.Mode, data); err != nil {
			return nil, err
		}
	}

	names := make([]string, 0, len(entries))
	for p := range entries {
		names = append(names, p)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range names {
		e := entries[p]
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// caBundle is the PEM bundle of the unconstrained Mozilla roots. Roots with a distrust-after
// date cannot be expressed in a PEM file, so they are left out (as Debian's bundle does).
func caBundle() []byte {
	var buf bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return buf.Bytes()
}

// CheckStatic fails unless r holds an ELF executable with no program interpreter and no
// shared libraries.
func CheckStatic(r io.ReaderAt) error {
	f, err := elf.NewFile(r)
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (has a program interpreter): build it with CGO_ENABLED=0")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("read dynamic section: %w", err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %v: build it with CGO_ENABLED=0", libs)
	}
	return nil
}
