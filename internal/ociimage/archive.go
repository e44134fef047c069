package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// WriteArchive writes img under every reference in refs (full names with a tag, e.g.
// ghcr.io/kafscale/kafscale-broker:0.1.0), in that order, as one docker-archive tarball at
// path: the config, the gzipped layers and manifest.json, in the layout `docker save` writes
// (tarball.Manifest). It writes the tar itself rather than with tarball.Write, whose order
// of tags follows a map's: the same image and refs give the same bytes. The file is written
// beside path and renamed, so an interrupted build never leaves half an archive.
func WriteArchive(path string, img v1.Image, refs ...string) error {
	if len(refs) == 0 {
		return errors.New("an archive needs at least one reference")
	}
	desc := tarball.Descriptor{}
	for _, r := range refs {
		tag, err := name.NewTag(r, name.StrictValidation)
		if err != nil {
			return fmt.Errorf("reference %q: %w", r, err)
		}
		desc.RepoTags = append(desc.RepoTags, tag.String())
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	desc.Config = cfgName.Hex + ".json"
	layers, err := img.Layers()
	if err != nil {
		return err
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), ".archive-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	put := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := put(desc.Config, int64(len(cfg)), bytes.NewReader(cfg)); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	for _, l := range layers {
		if err := putLayer(put, l, &desc); err != nil {
			tmp.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	m, err := json.Marshal(tarball.Manifest{desc})
	if err != nil {
		tmp.Close()
		return err
	}
	if err := put("manifest.json", int64(len(m)), bytes.NewReader(m)); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tw.Close(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// putLayer writes one compressed layer, named by its digest as `docker save` does.
func putLayer(put func(string, int64, io.Reader) error, l v1.Layer, desc *tarball.Descriptor) error {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	name := d.Hex + ".tar.gz"
	desc.Layers = append(desc.Layers, name)
	return put(name, size, rc)
}

// ReadArchive opens the image tagged ref in a docker-archive tarball.
func ReadArchive(path, ref string) (v1.Image, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return nil, err
	}
	return tarball.ImageFromPath(path, &tag)
}

// Tags lists the references an archive's manifest.json names.
func Tags(path string) ([]string, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, d := range m {
		tags = append(tags, d.RepoTags...)
	}
	return tags, nil
}

// ReadFile returns the content of the regular file at p (absolute) in img's layers, the
// upper layer winning.
func ReadFile(img v1.Image, p string) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	want := p[1:]
	var found []byte
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			if h.Name == want && h.Typeflag == tar.TypeReg {
				var buf bytes.Buffer
				if _, err := io.Copy(&buf, tr); err != nil {
					rc.Close()
					return nil, err
				}
				found = buf.Bytes()
			}
		}
		rc.Close()
	}
	if found == nil {
		return nil, fmt.Errorf("%s: not in the image", p)
	}
	return found, nil
}

// Entries lists every tar header of img's layers in order, for checks of owners and modes.
func Entries(img v1.Image) ([]tar.Header, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var hs []tar.Header
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			hs = append(hs, *h)
		}
		rc.Close()
	}
	return hs, nil
}
