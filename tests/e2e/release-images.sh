#!/usr/bin/env bash
# tests/e2e/release-images.sh COMMIT DIR: the image archives and the chart of an earlier commit
# (release A of the e2e tier), built from that commit's own sources, into DIR/<commit>/images
# and DIR/<commit>/chart. Cached: a directory that already holds both is used as it is.
#
# The commit is checked out into a clone sharing this repository's objects (not a worktree of
# it, so nothing is added to the repository's own metadata), and its own `make images`
# builds the archives with this checkout's pinned tools.
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse --verify "$1^{commit}")
out=$2/$commit
if [ -f "$out/images/images.env" ] && [ -f "$out/chart/Chart.yaml" ] && [ -f "$out/commit" ]; then
  echo "release $commit: images and chart cached in $out"
  exit 0
fi
src=$2/src-$commit
rm -rf "$src" "$out"
mkdir -p "$2"
git clone -q --shared --no-checkout "$repo" "$src"
git -C "$src" checkout -q --detach "$commit"
# Its bin/ links to every tool of this checkout's, with copies of the stamps made newer than
# the fresh clone's files, so its make builds no tool (and writes nothing into the shared bin).
mkdir -p "$src/bin"
for f in "$repo"/bin/*; do ln -s "$f" "$src/bin/"; done
cp -r "$repo/bin/.stamp" "$src/bin/.stamp"
find "$src/bin/.stamp" -type f -exec touch {} +
echo "release $commit: building its images in $src"
make -C "$src" --no-print-directory images IMAGES_DIR="$out/images.partial"
mkdir -p "$out"
cp -r "$src/charts/kafscale" "$out/chart"
echo "$commit" >"$out/commit"
mv "$out/images.partial" "$out/images"
rm -rf "$src"
echo "release $commit: images and chart in $out"
