#!/usr/bin/env bash
# Installs what sysweave needs, idempotently. Usage: infra/setup.sh core|full (default: full)
#   core  (`make run`): Debian's bcc, strace, iproute2 and the nearest kernel headers (linked for bcc),
#         tracefs, the project virtualenv with bcc made importable.
#   full  (`make setup`, `make test`): core, plus what the suite's servers and tools need: clickhouse-server,
#         a JRE + Maven and the Kafka broker's jars, Jaeger v2 and helm built from the Go module proxy, the
#         Kubernetes OpenAPI schema and the PodMonitor CRD (Go modules) for the chart tests, dockerfilelint (npm).
# Every step checks before acting, so a second run does nothing and fetches nothing.
set -euo pipefail
MODE=${1:-full}
case "$MODE" in core|full) ;; *) printf 'setup: usage: infra/setup.sh core|full\n' >&2; exit 2 ;; esac
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
LOCAL="$top/.local"
VENV="$top/.venv"
PY=${PYTHON:-python3}
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || die "$1 needs root. Run 'sudo make setup' once, then 'make test' as before."
}

# --- Debian packages -------------------------------------------------------------------------
apt_pkgs=(bpfcc-tools python3-bpfcc strace iproute2)
# systemtap-sdt-dev: sys/sdt.h, for the USDT test fixture (tests/uprobes/test_usdt.py); mmdebstrap, buildah,
# podman, crun: the images (infra/images.sh) and the test that runs the agent image (tests/cluster/test_agent_image.py)
if [ "$MODE" = full ]; then
  apt_pkgs+=(clickhouse-server clickhouse-client maven default-jre-headless systemtap-sdt-dev mmdebstrap buildah podman crun)
fi
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# bcc compiles its C against kernel headers. Debian packages none for this (Firecracker) kernel, so we
# install the nearest cloud-amd64 headers and link them in (see the kernel-headers step below).
kver=$(uname -r)
hdr_pkg=""
if [ ! -e "/lib/modules/$kver/build/include" ]; then
  if ! ls -d /usr/src/linux-headers-*-cloud-amd64 >/dev/null 2>&1; then
    if [ ${#missing[@]} -gt 0 ] || ! apt-cache show linux-headers-cloud-amd64 >/dev/null 2>&1; then
      need_root "installing Debian packages"; apt-get update -qq || die "apt-get update failed: check network access to Debian's mirrors"
    fi
    hdr_pkg=$(apt-cache search --names-only '^linux-headers-[0-9].*-cloud-amd64$' | awk '{print $1}' | sort -V | tail -n1)
    [ -n "$hdr_pkg" ] || die "no linux-headers-*-cloud-amd64 package found; run 'apt-get update' and retry"
    missing+=("$hdr_pkg")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  need_root "installing ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  [ -n "$hdr_pkg" ] || apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed (see the output above); fix apt and rerun 'make setup'"
fi

# --- kernel headers for bcc ------------------------------------------------------------------
if [ ! -e "/lib/modules/$kver/build/include" ]; then
  need_root "linking kernel headers"
  hdr=$(ls -d /usr/src/linux-headers-*-cloud-amd64 | sort -V | tail -n1)
  common=${hdr%-cloud-amd64}-common
  [ -d "$common" ] || die "found $hdr but not its $common; reinstall ${hdr##*/}"
  mkdir -p "/lib/modules/$kver"
  ln -sfn "$hdr" "/lib/modules/$kver/build"
  ln -sfn "$common" "/lib/modules/$kver/source"
  say "linked $hdr as /lib/modules/$kver/build (nearest packaged headers for kernel $kver)"
fi

# --- tracefs ---------------------------------------------------------------------------------
if [ ! -e /sys/kernel/tracing/events ]; then
  if [ "$(id -u)" = 0 ]; then
    mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || say "could not mount tracefs at /sys/kernel/tracing: eBPF capture will fall back to ptrace"
  else
    say "tracefs is not mounted at /sys/kernel/tracing; as root: mount -t tracefs tracefs /sys/kernel/tracing"
  fi
fi

# --- the rest of the host state capture relies on (the same checks: sysweave doctor) ------------
# bpffs: function probes pin their maps there, and the bcc fallback (where the CO-RE object cannot load)
# keeps its loaded programs there (agents/sysweave/agents/bpf/objects.py; without it each bcc start compiles,
# ~3.5 s instead of ~0.3 s). Capture also mounts it itself when root; here for the agents that run with
# capabilities only (no CAP_SYS_ADMIN to mount).
if ! awk '$2 == "/sys/fs/bpf" && $3 == "bpf" {found = 1} END {exit !found}' /proc/self/mounts; then
  if [ "$(id -u)" = 0 ]; then
    if mount -t bpf -o mode=0700 bpf /sys/fs/bpf; then say "mounted bpffs at /sys/fs/bpf (function probes, the bcc program cache)"
    else say "could not mount bpffs at /sys/fs/bpf (no CAP_SYS_ADMIN?): no --uprobe, and a bcc fallback compiles at every start"; fi
  else
    say "bpffs is not mounted at /sys/fs/bpf (--uprobe, the bcc program cache); as root: mount -t bpf bpf /sys/fs/bpf"
  fi
fi
# /run/sysweave: the program cache's locks (capture creates it too; /run is emptied at boot).
if [ ! -d /run/sysweave ] && [ "$(id -u)" = 0 ]; then mkdir -p /run/sysweave; fi
# cgroup v2: what 'sysweave agent --cgroup' selects by. A cgroup v1 host (hybrid) has it at /sys/fs/cgroup/unified.
if ! awk '$3 == "cgroup2" {found = 1} END {exit !found}' /proc/self/mounts; then
  cg2=/sys/fs/cgroup
  awk '$3 == "cgroup" {found = 1} END {exit !found}' /proc/self/mounts && cg2=/sys/fs/cgroup/unified
  if [ "$(id -u)" = 0 ]; then
    if mkdir -p "$cg2" && mount -t cgroup2 none "$cg2"; then say "mounted cgroup2 at $cg2"
    else say "could not mount cgroup2 at $cg2: 'sysweave agent --cgroup' will not work"; fi
  else
    say "no cgroup v2 hierarchy (agent --cgroup); as root: mkdir -p $cg2 && mount -t cgroup2 none $cg2"
  fi
fi
# Locked memory: kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK (capture lifts it as root); later
# ones charge the memory cgroup. Nothing to set on this kernel; say so where it matters.
IFS=. read -r kmaj kmin _ <<<"$kver"
if [ "$kmaj" -lt 5 ] || { [ "$kmaj" = 5 ] && [ "${kmin%%[!0-9]*}" -lt 11 ]; }; then
  [ "$(ulimit -l)" = unlimited ] || say "kernel $kver charges BPF maps to RLIMIT_MEMLOCK ($(ulimit -l) KiB): run capture as root or with 'ulimit -l unlimited'"
fi
# BTF (CO-RE programs relocate against it; bcc compiles against the headers above instead).
[ -e /sys/kernel/btf/vmlinux ] || say "no /sys/kernel/btf/vmlinux (kernel without CONFIG_DEBUG_INFO_BTF): capture uses the kernel headers"

# --- virtualenv ------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV" || die "could not create a virtualenv with $PY; install python3-venv"
fi
stamp="$VENV/.sysweave-installed"
reqhash=$(cat pyproject.toml */pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$reqhash" ]; then
  say "installing sysweave and its dependencies into $VENV (pip cache: ~/.cache/pip)"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e "./schemas" -e "./agents[gpu]" -e "./agents/sdk" -e "./streams[worker]" -e "./validator" -e "./cli" -e ".[dev]" \
    || die "pip install failed (see above); check network access to PyPI and rerun 'make setup'"
  echo "$reqhash" > "$stamp"
fi
# bcc's Python module is Debian's (pure Python over libbcc.so). Expose only the `bcc` package to the venv
# through a .pth folder; never `pip install bcc` (an unrelated PyPI project of the same name).
bccdir="$LOCAL/bcc-python"
if [ -d /usr/lib/python3/dist-packages/bcc ]; then
  mkdir -p "$bccdir"
  ln -sfn /usr/lib/python3/dist-packages/bcc "$bccdir/bcc"
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$bccdir" > "$site/sysweave-debian-bcc.pth"
fi
# --- CO-RE BPF objects (owned by infra/build-bpf.sh: clang/bpftool/libbpf-dev at build time only) ----------
bash infra/build-bpf.sh

if [ "$MODE" = core ]; then say "ready (core: enough for 'make run'; 'make setup' adds the test services and tools)"; exit 0; fi

# --- Kafka broker jars -----------------------------------------------------------------------
kafka_libs="$LOCAL/kafka/libs"
if [ ! -f "$kafka_libs/.complete" ] || [ infra/kafka/pom.xml -nt "$kafka_libs/.complete" ]; then
  say "resolving Apache Kafka from Maven Central (cache: ~/.m2/repository)"
  rm -rf "$kafka_libs"; mkdir -p "$kafka_libs"
  (cd infra/kafka && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$kafka_libs" -DincludeScope=runtime) \
    || die "Maven could not resolve the Kafka broker (infra/kafka/pom.xml); check access to Maven Central"
  touch "$kafka_libs/.complete"
fi
# The folder of a Go module downloaded through the proxy (cached in ~/go/pkg/mod); fails when it cannot be had.
go_module_dir() {  # go_module_dir MODULE@VERSION
  local d
  d=$(go mod download -json "$1" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  [ -n "$d" ] && printf '%s' "$d"
}
# --- Jaeger v2 (a real OTLP receiver with a query API, for the OTLP tests) ---------------------
# Built from the Go module proxy: `go install` refuses modules with replace directives, so build inside
# the downloaded module. Caches: ~/go/pkg/mod and ~/.cache/go-build.
JAEGER_VERSION=v1.76.0  # the Go module version of Jaeger v2.x
if [ ! -x "$LOCAL/bin/jaeger" ]; then
  command -v go >/dev/null || die "Go is needed to build Jaeger for the OTLP tests (apt-get install golang or https://go.dev)"
  say "building Jaeger $JAEGER_VERSION from the Go module proxy (first time only; several minutes)"
  dir=$(go_module_dir "github.com/jaegertracing/jaeger@$JAEGER_VERSION") \
    || die "go mod download github.com/jaegertracing/jaeger@$JAEGER_VERSION failed; check access to the Go module proxy"
  mkdir -p "$LOCAL/bin"
  (cd "$dir" && GOFLAGS=-mod=mod go build -o "$LOCAL/bin/jaeger.tmp" ./cmd/jaeger) || die "building Jaeger failed (see above)"
  mv "$LOCAL/bin/jaeger.tmp" "$LOCAL/bin/jaeger"
fi
# --- helm (the chart tests: lint --strict, template) ------------------------------------------
# helm's release builds set the Kubernetes version it assumes (.Capabilities.KubeVersion) from its
# client-go (v0.X -> v1.X) through ldflags (helm's Makefile: pkg/chartutil and pkg/lint/rules
# k8sVersionMajor/Minor); without them it assumes v1.20, and a chart with kubeVersion >= 1.25 fails to render
# without --kube-version. A helm built before these flags were set is rebuilt.
HELM_VERSION=v3.19.5
helm_kube_version() {  # the Kubernetes version a helm binary renders for by default
  local d v
  d=$(mktemp -d)
  mkdir -p "$d/c/templates"
  printf 'apiVersion: v2\nname: c\nversion: 0.1.0\n' > "$d/c/Chart.yaml"
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  kube: "{{ .Capabilities.KubeVersion.Version }}"\n' \
    > "$d/c/templates/c.yaml"
  v=$("$1" template "$d/c" 2>/dev/null | sed -n 's/^  kube: "\(.*\)"$/\1/p')
  rm -rf "$d"
  printf '%s' "$v"
}
if [ ! -x "$LOCAL/bin/helm" ] || ! "$LOCAL/bin/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION" \
    || [ "$(helm_kube_version "$LOCAL/bin/helm")" = v1.20.0 ]; then
  command -v go >/dev/null || die "Go is needed to build helm for the chart tests (apt-get install golang or https://go.dev)"
  say "building helm $HELM_VERSION from the Go module proxy (first time only; a few minutes)"
  dir=$(go_module_dir "helm.sh/helm/v3@$HELM_VERSION") \
    || die "go mod download helm.sh/helm/v3@$HELM_VERSION failed; check access to the Go module proxy"
  kminor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$dir/go.mod")
  [ -n "$kminor" ] || die "no k8s.io/client-go version in helm's go.mod ($dir/go.mod)"
  kube=(-X "helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1" -X "helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kminor"
        -X "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1" -X "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kminor")
  mkdir -p "$LOCAL/bin"
  (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION ${kube[*]}" \
      -o "$LOCAL/bin/helm.tmp" ./cmd/helm) || die "building helm failed (see above)"
  [ "$(helm_kube_version "$LOCAL/bin/helm.tmp")" = "v1.$kminor.0" ] \
    || die "the helm just built does not assume Kubernetes v1.$kminor (ldflags not applied)"
  mv "$LOCAL/bin/helm.tmp" "$LOCAL/bin/helm"
fi
# --- the Kubernetes OpenAPI schema the rendered chart is validated against ---------------------
# k8s.io/kubernetes carries api/openapi-spec/v3 (one OpenAPI 3 document per group/version) for its release.
K8S_VERSION=v1.34.2
k8s_spec="$LOCAL/k8s-openapi/$K8S_VERSION"
if [ ! -f "$k8s_spec/apis__apps__v1_openapi.json" ]; then
  say "fetching the Kubernetes $K8S_VERSION OpenAPI schema (Go module k8s.io/kubernetes)"
  dir=$(go_module_dir "k8s.io/kubernetes@$K8S_VERSION") && [ -d "$dir/api/openapi-spec/v3" ] \
    || die "go mod download k8s.io/kubernetes@$K8S_VERSION failed; check access to the Go module proxy"
  rm -rf "$k8s_spec.tmp"; mkdir -p "$LOCAL/k8s-openapi"
  cp -r "$dir/api/openapi-spec/v3" "$k8s_spec.tmp" && chmod -R u+w "$k8s_spec.tmp" && mv "$k8s_spec.tmp" "$k8s_spec"
fi
# The Prometheus Operator's PodMonitor CRD (the chart's optional PodMonitor is validated against its schema).
PROMOP_VERSION=v0.85.0
crd="$LOCAL/k8s-openapi/crds/monitoring.coreos.com_podmonitors.yaml"
if [ ! -f "$crd" ]; then
  say "fetching the PodMonitor CRD (Go module github.com/prometheus-operator/prometheus-operator@$PROMOP_VERSION)"
  dir=$(go_module_dir "github.com/prometheus-operator/prometheus-operator@$PROMOP_VERSION") \
    && [ -f "$dir/example/prometheus-operator-crd/${crd##*/}" ] \
    || die "go mod download github.com/prometheus-operator/prometheus-operator@$PROMOP_VERSION failed; check access to the Go module proxy"
  mkdir -p "${crd%/*}"
  cp "$dir/example/prometheus-operator-crd/${crd##*/}" "$crd.tmp" && chmod u+w "$crd.tmp" && mv "$crd.tmp" "$crd"
fi
# --- dockerfilelint (no Docker engine here: the Dockerfiles are linted, not built) -----------
DOCKERFILELINT_VERSION=1.8.0
if [ ! -x "$LOCAL/npm/node_modules/.bin/dockerfilelint" ]; then
  command -v npm >/dev/null || die "npm is needed for dockerfilelint (apt-get install npm)"
  say "installing dockerfilelint $DOCKERFILELINT_VERSION from the npm registry"
  npm install --silent --no-audit --no-fund --prefix "$LOCAL/npm" "dockerfilelint@$DOCKERFILELINT_VERSION" >/dev/null \
    || die "npm install dockerfilelint@$DOCKERFILELINT_VERSION failed; check access to the npm registry"
fi
say "ready"
