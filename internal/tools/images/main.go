// Command images writes `make images`: one docker-archive tarball per image into -out, built
// without a container engine (internal/ociimage).
//
//   - one image per product binary named by -binaries (the Makefile's BINARIES): the binary
//     ./<name> built static (CGO_ENABLED=0, -trimpath, no VCS stamp, no build id) at
//     /kafscale-<name>, its entrypoint, tagged ghcr.io/kafscale/kafscale-<name>:<appVersion>
//     (Chart.yaml) and :<commit> (the short commit, `-dirty` when the tree has changes);
//   - the etcd image for managed etcd and the S3 server image for local clusters, from the
//     static binaries -etcd and -versitygw (built by the Makefile from pinned modules), tagged
//     with their upstream versions.
//
// `images node ...` writes the images of the offline kind node image instead (node.go).
//
// Every image's time is the commit's, so the same commit gives the same digests. It also
// writes <out>/images.env: the references kind/up.sh loads and sets in the chart's values.
//
//	go run ./internal/tools/images -out bin/images -binaries "operator broker" \
//	  -etcd bin/etcd -etcd-version v3.6.16 -versitygw bin/versitygw -versitygw-version v1.8.0
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kafscale/kafscale/internal/ociimage"
)

// Registry is where the chart's default image references point; images built here carry the
// same names, so a cluster that has them loaded never pulls.
const Registry = "ghcr.io/kafscale"

const source = "https://github.com/kafscale/kafscale"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "node" {
		if err := runNode(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "images: %v\n", err)
			os.Exit(1)
		}
		return
	}
	out := flag.String("out", "bin/images", "directory for the archives")
	binaries := flag.String("binaries", "", "product binaries, space separated: each ./<name> is a main package")
	chart := flag.String("chart", "charts/kafscale/Chart.yaml", "the chart whose appVersion tags the product images")
	etcd := flag.String("etcd", "", "static etcd binary for the etcd image (empty: no etcd image)")
	etcdVersion := flag.String("etcd-version", "", "etcd's version, the etcd image's tag")
	versitygw := flag.String("versitygw", "", "static versitygw binary for the S3 server image (empty: no image)")
	versitygwVersion := flag.String("versitygw-version", "", "versitygw's version, its image's tag")
	flag.Parse()
	if err := run(*out, strings.Fields(*binaries), *chart, *etcd, *etcdVersion, *versitygw, *versitygwVersion); err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
}

// build is one image to write.
type build struct {
	name  string // archive file name without .tar
	refs  []string
	spec  ociimage.Spec
	envAs string // the images.env variable holding its first reference
}

func run(out string, binaries []string, chartPath, etcd, etcdVersion, versitygw, versitygwVersion string) error {
	appVersion, err := chartAppVersion(chartPath)
	if err != nil {
		return err
	}
	rev, err := revision()
	if err != nil {
		return err
	}
	arch := os.Getenv("GOARCH")
	if arch == "" {
		arch = runtime.GOARCH
	}
	binDir := filepath.Join(out, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	labels := func(title, description, version, src, license string) map[string]string {
		return map[string]string{
			"org.opencontainers.image.title":       title,
			"org.opencontainers.image.description": description,
			"org.opencontainers.image.version":     version,
			"org.opencontainers.image.revision":    rev.commit,
			"org.opencontainers.image.created":     rev.time.UTC().Format(time.RFC3339),
			"org.opencontainers.image.source":      src,
			"org.opencontainers.image.licenses":    license,
			"org.opencontainers.image.vendor":      "KafScale",
		}
	}

	var builds []build
	for _, b := range binaries {
		bin := filepath.Join(binDir, "kafscale-"+b)
		if err := goBuild(bin, "./"+b); err != nil {
			return err
		}
		repo := Registry + "/kafscale-" + b
		builds = append(builds, build{
			name: "kafscale-" + b,
			refs: []string{repo + ":" + appVersion, repo + ":" + rev.tag},
			spec: ociimage.Spec{
				Files:      []ociimage.File{{Path: "/kafscale-" + b, Source: bin, Mode: 0o755, Static: true}},
				Entrypoint: []string{"/kafscale-" + b},
				Labels:     labels("kafscale-"+b, "KafScale "+b, appVersion, source, "Apache-2.0"),
			},
			envAs: strings.ToUpper(b) + "_IMAGE",
		})
	}
	if etcd != "" {
		builds = append(builds, build{
			name: "etcd",
			refs: []string{Registry + "/etcd:" + etcdVersion},
			spec: ociimage.Spec{
				Files:      []ociimage.File{{Path: "/usr/local/bin/etcd", Source: etcd, Mode: 0o755, Static: true}},
				Entrypoint: []string{"/usr/local/bin/etcd"},
				Labels:     labels("etcd", "etcd "+etcdVersion+" built from go.etcd.io/etcd/server/v3 (tests/tools/etcd), for managed etcd on local clusters", etcdVersion, "https://github.com/etcd-io/etcd", "Apache-2.0"),
			},
			envAs: "ETCD_IMAGE",
		})
	}
	if versitygw != "" {
		builds = append(builds, build{
			name: "versitygw",
			refs: []string{Registry + "/versitygw:" + versitygwVersion},
			spec: ociimage.Spec{
				Files:      []ociimage.File{{Path: "/usr/local/bin/versitygw", Source: versitygw, Mode: 0o755, Static: true}},
				Entrypoint: []string{"/usr/local/bin/versitygw"},
				Labels:     labels("versitygw", "versitygw "+versitygwVersion+", the S3-compatible server of local clusters", versitygwVersion, "https://github.com/versity/versitygw", "Apache-2.0"),
			},
			envAs: "VERSITYGW_IMAGE",
		})
	}
	if len(builds) == 0 {
		return fmt.Errorf("nothing to build: give -binaries, -etcd or -versitygw")
	}

	env := []string{"IMAGE_TAG=" + rev.tag, "APP_VERSION=" + appVersion}
	for _, b := range builds {
		b.spec.Created = rev.time
		b.spec.Architecture = arch
		img, err := ociimage.Build(b.spec)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		archive := filepath.Join(out, b.name+".tar")
		if err := ociimage.WriteArchive(archive, img, b.refs...); err != nil {
			return err
		}
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Printf("%-24s %s %s\n", b.name+".tar", digest, strings.Join(b.refs, " "))
		env = append(env, b.envAs+"="+b.refs[len(b.refs)-1])
	}
	sort.Strings(env[2:])
	return os.WriteFile(filepath.Join(out, "images.env"), []byte(strings.Join(env, "\n")+"\n"), 0o644)
}

// goBuild builds a static, reproducible binary: no cgo, no paths, no VCS stamp (a dirty
// tree would change it), no build id.
func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

func chartAppVersion(p string) (string, error) {
	src, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	var c struct {
		AppVersion string `yaml:"appVersion"`
	}
	if err := yaml.Unmarshal(src, &c); err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	if c.AppVersion == "" {
		return "", fmt.Errorf("%s has no appVersion", p)
	}
	return c.AppVersion, nil
}

// rev is the commit the images are built from.
type rev struct {
	commit string    // full hash, with -dirty when the work tree has changes
	tag    string    // short hash, with -dirty
	time   time.Time // commit time
}

func revision() (rev, error) {
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", args...).Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %w (images are tagged from the git commit: build inside the repository)", strings.Join(args, " "), err)
		}
		return string(bytes.TrimSpace(out)), nil
	}
	commit, err := git("rev-parse", "HEAD")
	if err != nil {
		return rev{}, err
	}
	ct, err := git("show", "-s", "--format=%ct", "HEAD")
	if err != nil {
		return rev{}, err
	}
	secs, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return rev{}, fmt.Errorf("commit time %q: %w", ct, err)
	}
	status, err := git("status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return rev{}, err
	}
	r := rev{commit: commit, tag: commit[:12], time: time.Unix(secs, 0).UTC()}
	if status != "" {
		r.commit += "-dirty"
		r.tag += "-dirty"
	}
	return r, nil
}
