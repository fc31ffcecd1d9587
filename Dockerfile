# Imagika container image: the proxy (default command), and with another command the origin and sample generator.
#
#   docker build -t imagika .
#   docker run --rm -p 8080:8080 -e IMAGIKA_ORIGIN=https://originals.example.com/ imagika
#
# Every setting comes from IMAGIKA_* variables (docs/operations.md#configuration); flags after the image name replace
# the whole command. scripts/container-smoke.sh builds this file with podman and checks the result (docs/deployment.md).

ARG NODE_IMAGE=node:24-bookworm-slim

# Build stage: every dependency, to build the frontend (vite) into web/dist; it imports its URL builder from url/.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY url ./url
COPY web ./web
RUN npm run build:web

# Run-time dependencies only: tsx runs the TypeScript sources, sharp brings libvips as npm packages; vite, vitest,
# eslint and the other devDependencies stay out (about 2/3 of node_modules).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
# jemalloc gives back what libvips' threads free (peak RSS 415 against 923 MiB under the same mixed load with glibc as
# shipped): docs/operations.md#memory.
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libjemalloc2 \
  && rm -rf /var/lib/apt/lists/* \
  && mkdir -p /data && chown 1000:1000 /data
# The allocator and the Node flags in CMD are what bin/imagika.js would otherwise set up in a child process (about
# 40 MB of RSS for the launcher): with both in place it runs the CLI in this process, so node is PID 1 and receives
# SIGTERM itself. MALLOC_CONF is bin/imagika.js's JEMALLOC_CONF.
ENV NODE_ENV=production \
  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
  MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY bin ./bin
COPY origin-server ./origin-server
COPY src ./src
# The option parser (src/transform/options.ts) takes its lists of fit, f, gravity and flip values from url/index.js.
COPY url ./url
COPY --from=build /app/web/dist ./web/dist
# The base image's `node` user, by number so that Kubernetes' runAsNonRoot can verify it. /data (owned by it) is where
# `imagika samples` and `imagika origin` keep a sample library in compose.yaml.
USER 1000:1000
EXPOSE 8080
# Liveness only (/healthz: the process answers); readiness (/readyz: origin answered once, not shutting down) is the
# orchestrator's probe. node does the request: the slim image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.IMAGIKA_PORT || 8080}/healthz`, { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM: stop accepting, answer what is in flight (up to IMAGIKA_SHUTDOWN_TIMEOUT_MS, 10 s), exit 0. Give the
# container a stop timeout above that (docker stop -t 15, compose stop_grace_period, terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
CMD ["node", "--no-memory-reducer", "--expose-gc", "bin/imagika.js", "proxy", "--host", "0.0.0.0"]
