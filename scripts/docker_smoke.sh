#!/usr/bin/env bash
# make docker-smoke: prove the serving image on a machine that reaches no image registry.
#
#   1. a Docker engine: Debian's docker.io (installed if missing), dockerd started in the background if
#      nothing answers on the socket;
#   2. a local base image in place of the official PyTorch one: Debian bookworm by debootstrap, with
#      python3, pip and venv (`docker import`), then a venv holding the local CPU torch wheel; both are
#      cached (image tags, and the rootfs tarball under $SMOKE_CACHE), so reruns skip them;
#   3. the project's Dockerfile built on it (BASE_IMAGE=that image), timed;
#   4. the image run (`docker run`, the image's own HEALTHCHECK polled every 2 s, read-only root
#      filesystem), time to healthy, a sample PNG checked (signature, IHDR size), the process user,
#      then a graceful stop.
# Prints image size, build time and time-to-ready. Needs root (apt-get, dockerd, debootstrap).
#
# Settings (environment): SMOKE_IMAGE (condgen:smoke), SMOKE_PORT (18080, published on 127.0.0.1 only),
# SMOKE_CACHE (~/.cache/condgen-docker-smoke), TORCH_VERSION (2.13.0), DEBIAN_MIRROR, CA_BUNDLE (the host's
# bundle, which pip inside the local base needs to reach the package index), SMOKE_KEEP=1 keeps the container.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${SMOKE_IMAGE:-condgen:smoke}
PORT=${SMOKE_PORT:-18080}
CACHE=${SMOKE_CACHE:-${HOME:-/root}/.cache/condgen-docker-smoke}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
BASE_TAG=condgen-smoke-base:bookworm-python3
TORCH_TAG=condgen-smoke-base:bookworm-torch${TORCH_VERSION}-cpu
READY_TIMEOUT=${SMOKE_READY_TIMEOUT:-600}
mkdir -p "$CACHE"

log() { printf '[docker-smoke %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { log "FAILED: $*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }
mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 2**20:.0f} MiB')" "$1"; }

[ -s "$CA_BUNDLE" ] || die "no CA bundle at $CA_BUNDLE (set CA_BUNDLE)"

# --- 1. the engine ------------------------------------------------------------------------------------
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -y -q)
    "${apt[@]}" install "$@" >"$CACHE/apt.log" 2>&1 \
        || { "${apt[@]}" update >>"$CACHE/apt.log" 2>&1 && "${apt[@]}" install "$@" >>"$CACHE/apt.log" 2>&1; } \
        || die "apt-get install $* (see $CACHE/apt.log): $(tail -n 3 "$CACHE/apt.log")"
}
command -v dockerd >/dev/null || { log "installing docker.io"; apt_install docker.io; }
command -v debootstrap >/dev/null || { log "installing debootstrap"; apt_install debootstrap; }
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: $CACHE/dockerd.log)"
    nohup dockerd >"$CACHE/dockerd.log" 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || die "dockerd did not come up: $(tail -n 5 "$CACHE/dockerd.log")"
fi
# A CLI without the buildx plugin cannot drive BuildKit: use the classic builder (the Dockerfile needs neither).
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
log "docker: client $(docker version -f '{{.Client.Version}}'), engine $(docker version -f '{{.Server.Version}}')"

# --- 2. the local base images -------------------------------------------------------------------------
umount_under() {  # whatever debootstrap left mounted under $1 (it mounts proc and sys while it runs)
    local m
    for m in $(awk -v r="$1" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" || true
    done
}
if ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    tarball="$CACHE/bookworm-python3-rootfs.tar"
    if [ ! -s "$tarball" ]; then
        rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
        trap 'umount_under "$rootfs"; rm -rf --one-file-system "$rootfs"' EXIT
        log "debootstrap bookworm (minbase + python3, pip, venv) from $MIRROR"
        t=$(now)
        debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
            bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
            || die "debootstrap (see $CACHE/debootstrap.log): $(tail -n 5 "$CACHE/debootstrap.log")"
        umount_under "$rootfs"
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
        tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        umount_under "$rootfs"; rm -rf --one-file-system "$rootfs"; trap - EXIT
        log "debootstrap done in $(secs "$t" "$(now)") s, rootfs cached at $tarball"
    fi
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
        "$tarball" "$BASE_TAG" >/dev/null
    log "imported $BASE_TAG"
fi

if ! docker image inspect "$TORCH_TAG" >/dev/null 2>&1; then
    ctx="$CACHE/torch-base-context"
    rm -rf "$ctx"; mkdir -p "$ctx"
    wheel=$(ls /opt/wheels/torch-"$TORCH_VERSION"+cpu-cp311-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
        python3 -m pip download -q "torch==$TORCH_VERSION" --no-deps --python-version 3.11 \
            --only-binary=:all: -d "$CACHE/wheels" || die "no torch $TORCH_VERSION wheel"
        wheel=$(ls "$CACHE"/wheels/torch-"$TORCH_VERSION"*.whl | head -n 1)
    fi
    ln -f "$wheel" "$ctx/" 2>/dev/null || cp "$wheel" "$ctx/"
    cp "$CA_BUNDLE" "$ctx/host-ca.crt"
    # The official image's counterpart: python3 with torch on PATH. The wheel is installed in a throwaway
    # stage so the 190 MB file is no layer of the result. The host CA bundle lets pip reach the index here.
    cat >"$ctx/Dockerfile" <<EOF
FROM $BASE_TAG AS build
LABEL condgen.smoke=build-stage
COPY host-ca.crt /etc/ssl/certs/host-ca.crt
ENV PIP_CERT=/etc/ssl/certs/host-ca.crt PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
COPY $(basename "$wheel") /tmp/
RUN /opt/venv/bin/python -m pip install -q /tmp/$(basename "$wheel")

FROM $BASE_TAG
COPY host-ca.crt /etc/ssl/certs/host-ca.crt
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/venv PIP_CERT=/etc/ssl/certs/host-ca.crt
EOF
    log "building $TORCH_TAG (venv + $(basename "$wheel"))"
    t=$(now)
    docker build -q -t "$TORCH_TAG" "$ctx" >"$CACHE/torch-base-build.log" 2>&1 \
        || die "building the torch base (see $CACHE/torch-base-build.log): $(tail -n 5 "$CACHE/torch-base-build.log")"
    rm -rf "$ctx"
    docker image prune -f --filter label=condgen.smoke=build-stage >/dev/null  # the classic builder's leftover stage
    log "torch base built in $(secs "$t" "$(now)") s"
fi
base_bytes=$(docker image inspect -f '{{.Size}}' "$TORCH_TAG")

# --- 3. the project's image ---------------------------------------------------------------------------
ls checkpoints/*.safetensors >/dev/null 2>&1 || die "no checkpoints/*.safetensors to bake into the image"
log "building $IMAGE from the Dockerfile (BASE_IMAGE=$TORCH_TAG)"
t=$(now)
docker build --build-arg BASE_IMAGE="$TORCH_TAG" --target serve -t "$IMAGE" . >"$CACHE/build.log" 2>&1 \
    || die "docker build (see $CACHE/build.log): $(tail -n 15 "$CACHE/build.log")"
build_s=$(secs "$t" "$(now)")
image_bytes=$(docker image inspect -f '{{.Size}}' "$IMAGE")
log "built in $build_s s: $(mib "$image_bytes") ($(mib $((image_bytes - base_bytes))) on top of the torch base)"

# --- 4. run it ----------------------------------------------------------------------------------------
name="condgen-smoke-$$"
cleanup() { [ "${SMOKE_KEEP:-0}" = 1 ] || docker rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
t=$(now)
docker run -d --name "$name" -p "127.0.0.1:$PORT:8000" --health-interval 2s \
    --read-only --tmpfs /tmp -e CONDGEN_DEVICE=cpu "$IMAGE" >/dev/null
while :; do
    state=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$name")
    [ "$state" = "running healthy" ] && break
    case $state in running*) ;; *) docker logs "$name" 2>&1 | tail -n 30; die "the container stopped: $state";; esac
    [ "$(secs "$t" "$(now)" | cut -d. -f1)" -lt "$READY_TIMEOUT" ] \
        || { docker logs "$name" 2>&1 | tail -n 30; die "not healthy after $READY_TIMEOUT s ($state)"; }
    sleep 0.5
done
ready_s=$(secs "$t" "$(now)")
log "healthy $ready_s s after docker run"

user=$(docker exec "$name" id -u)
[ "$user" != 0 ] || die "the service runs as root"
python3 - "$PORT" "$CACHE/sample.png" <<'EOF' || die "sample check"
import json, struct, sys, urllib.request
port, out = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
ready = json.load(urllib.request.urlopen(f"{base}/readyz", timeout=10))
models = json.load(urllib.request.urlopen(f"{base}/models", timeout=10))
models = models.get("models", models) if isinstance(models, dict) else models
samplers = [m for m in models if "sample" in m.get("operations", [])]
assert samplers, f"no model that samples: {models}"
m = next((m for m in samplers if m["name"] == "acgan"), samplers[0])
cls = "sneaker" if "sneaker" in m["classes"] else m["classes"][0]
print(f"  /readyz: {ready}")
print(f"  /models: " + ", ".join(f"{x['name']} ({x['family']}, {x.get('device')}, {x.get('dtype')})" for x in models))
req = urllib.request.Request(f"{base}/{m['name']}/sample?class={cls}&n=16&seed=7", method="POST")
with urllib.request.urlopen(req, timeout=60) as r:
    ctype, body = r.headers["content-type"], r.read()
open(out, "wb").write(body)
assert ctype == "image/png", ctype
assert body[:8] == b"\x89PNG\r\n\x1a\n", f"not a PNG: {body[:16]!r}"
assert body[12:16] == b"IHDR"
w, h = struct.unpack(">II", body[16:24])
size = m["image_size"]
assert w >= 4 * size and h >= 4 * size, f"{w}x{h} is no 4x4 grid of {size}px images"
print(f"  POST /{m['name']}/sample?class={cls}&n=16&seed=7: {ctype}, {w}x{h}, {len(body)} bytes -> {out}")
EOF
log "sample OK; the service runs as uid $user"

t=$(now)
docker stop -t 30 "$name" >/dev/null
stop_s=$(secs "$t" "$(now)")
code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
docker logs "$name" 2>&1 | tail -n 4 | sed 's/^/  /'
[ "$code" = 0 ] || die "exit code $code after SIGTERM"
log "stopped gracefully in $stop_s s (exit 0)"

echo
echo "docker-smoke: PASS"
echo "  image        $IMAGE  $(mib "$image_bytes")  (base $TORCH_TAG $(mib "$base_bytes"); project layers $(mib $((image_bytes - base_bytes))))"
echo "  build time   $build_s s  (docker build of the Dockerfile on the cached base)"
echo "  time-ready   $ready_s s  (docker run -> HEALTHCHECK on /readyz healthy)"
