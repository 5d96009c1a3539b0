#!/usr/bin/env bash
# `make images`: the agent image and the full image, built here without a Docker engine and without pulling a
# base image: mmdebstrap makes each root filesystem from Debian 12 packages, the project's wheels (and their
# PyPI dependencies, as wheels) are installed into /opt/sysweave inside it, buildah turns the tree into an
# OCI image in the local container storage (podman sees it). The same contents as docker/*.Dockerfile.
#   infra/images.sh [agent|full|all]      (default all; as root)
# Checks each image holds no compiler and no kernel headers, and writes their sizes to build/images/sizes.txt.
set -euo pipefail
WHICH=${1:-all}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PY=${PY:-$top/.venv/bin/python}
OUT=$top/build/images
VERSION=0.1.0
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm  # Debian 12: python3 3.11, libbpf 1.1 (the Dockerfiles' debian:12 base)
say() { printf 'images: %s\n' "$*"; }
die() { printf 'images: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "building images needs root (mmdebstrap, buildah). Run 'sudo make images'."
missing=()
for p in mmdebstrap buildah podman crun; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq || die "apt-get update failed: check network access to Debian's mirrors"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi
bash infra/build-bpf.sh
for obj in syscalls uprobes; do
  [ -f "agents/sysweave/agents/bpf/$obj.bpf.o" ] || die "agents/sysweave/agents/bpf/$obj.bpf.o was not built"
done
mkdir -p "$OUT"

# wheels DIR SPEC...: the project's wheels and every dependency's, for an offline install inside the image
wheels() {
  local dir=$1; shift
  rm -rf "$dir"; mkdir -p "$dir"
  "$PY" -m pip wheel -q --wheel-dir "$dir" "$@" || die "pip wheel $* failed (PyPI reachable?)"
}

# rootfs NAME "DEBIAN PACKAGES" WHEELDIR "PIP SPEC" [SETUP]: a root filesystem tarball
rootfs() {
  local name=$1 pkgs=$2 wheeldir=$3 spec=$4 setup=${5:-true}
  say "root filesystem for $name: Debian $SUITE ($pkgs) + $spec"
  mmdebstrap --quiet --variant=apt --include="$pkgs" \
    --customize-hook="mkdir -p \"\$1/tmp/wheels\" && cp $wheeldir/*.whl \"\$1/tmp/wheels/\"" \
    --customize-hook="chroot \"\$1\" python3 -m venv /opt/sysweave" \
    --customize-hook="chroot \"\$1\" env -i PATH=/usr/bin:/bin /opt/sysweave/bin/pip install -q --no-cache-dir --no-index --find-links /tmp/wheels $spec" \
    --customize-hook="chroot \"\$1\" sh -c '$setup'" \
    --customize-hook="rm -rf \"\$1/tmp/wheels\" \"\$1\"/var/lib/apt/lists/* \"\$1\"/var/cache/apt/* \"\$1\"/usr/share/doc/* \"\$1\"/usr/share/man/*" \
    --customize-hook="chroot \"\$1\" dpkg --purge --force-depends --force-remove-essential apt perl perl-modules-5.36 libperl5.36 >/dev/null 2>&1" \
    --customize-hook="rm -rf \"\$1\"/usr/share/locale/* \"\$1\"/usr/share/info/*" \
    "$SUITE" "$OUT/$name-rootfs.tar" "$MIRROR" || die "mmdebstrap for $name failed"
}

# no_toolchain TAR: fails when the tree holds a compiler, LLVM or kernel headers
no_toolchain() {
  local bad
  bad=$(tar -tf "$1" | grep -E '^\./usr/bin/(clang|gcc|cc|c\+\+|g\+\+|cpp|llc|tcc)(-[0-9.]+)?$|^\./usr/lib/llvm-|libclang|libLLVM|^\./usr/src/linux-headers|^\./lib/modules/|^\./usr/include/linux/' | head -5 || true)
  [ -z "$bad" ] || die "$1 holds a compiler or kernel headers: $bad"
}

# image NAME TAG USER ENTRYPOINT-JSON CMD-JSON WORKDIR: the tarball as an OCI image in local storage
image() {
  local name=$1 tag=$2 user=$3 entry=$4 cmd=$5 wd=$6 ctr
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$OUT/$name-rootfs.tar" / >/dev/null
  buildah config --env PATH=/opt/sysweave/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 --user "$user" --workingdir "$wd" \
    --entrypoint "$entry" --cmd "$cmd" --label org.opencontainers.image.title="sysweave $name" \
    --label org.opencontainers.image.version=$VERSION "$ctr"
  buildah commit --quiet --rm "$ctr" "$tag" >/dev/null
  say "built $tag ($(podman image inspect --format '{{.Size}}' "$tag" | numfmt --to=iec) unpacked; rootfs tar $(stat -c %s "$OUT/$name-rootfs.tar" | numfmt --to=iec))"
  printf '%s\t%s\t%s\n' "$tag" "$(podman image inspect --format '{{.Size}}' "$tag")" "$(date -u +%F)" >> "$OUT/sizes.txt"
}

if [ "$WHICH" = agent ] || [ "$WHICH" = all ]; then
  # Debian's libbpf loads the prebuilt CO-RE object; no bcc, LLVM or kernel headers (nodes need BTF: 5.8+)
  wheels "$OUT/wheels-agent" ./schemas "./agents[gpu]" ./cli
  rootfs agent "python3,python3-venv,libbpf1,iproute2,ca-certificates" "$OUT/wheels-agent" "sysweave-cli sysweave-agents[gpu]"
  no_toolchain "$OUT/agent-rootfs.tar"
  image agent "localhost/sysweave/agent:$VERSION" 0 '["sysweave"]' '["agent", "--help"]' /
fi
if [ "$WHICH" = full ] || [ "$WHICH" = all ]; then
  wheels "$OUT/wheels-full" .
  rootfs full "python3,python3-venv,ca-certificates" "$OUT/wheels-full" "sysweave" \
    "groupadd --system --gid 10001 sysweave && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sysweave --shell /usr/sbin/nologin sysweave && mkdir -p /var/lib/sysweave && chown sysweave:sysweave /var/lib/sysweave"
  no_toolchain "$OUT/full-rootfs.tar"
  image full "localhost/sysweave/sysweave:$VERSION" 10001:10001 '["sysweave"]' '["--help"]' /var/lib/sysweave
fi
