import { openSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { isRunning, spawnTracked, stopChild, trackPid } from "./children.ts";
import { waitForHttp } from "./http-ready.ts";
import { placeCommand } from "./placement.ts";
import type { Placement } from "./placement.ts";
import { findChildPids, readCommandLine } from "./proc.ts";

/**
 * What this nginx does with `/img/<file>`:
 * - `proxy-cache`: proxies to the origin and keeps the answer in `proxy_cache` (the cached-hit peer);
 * - `static`: serves the originals from `originDir` with sendfile (the ceiling for cached bytes);
 * - `image-filter`: `proxy_cache` (with `proxy_cache_lock`) in front of a second server block that fetches the
 *   original and resizes it with `image_filter resize <width> -` (libgd; JPEG stays JPEG). That inner block writes an
 *   access log, one line per resize, so the bench can count transforms.
 * - `revalidate`: `proxy_cache` whose entries stay fresh `validSeconds`, then are revalidated with a conditional
 *   request (`proxy_cache_revalidate`), and are served stale when the origin fails (`proxy_cache_use_stale`): the
 *   freshness bench's peer.
 */
export type NginxRole = "proxy-cache" | "static" | "image-filter" | "revalidate";

export interface NginxOptions {
  readonly role?: NginxRole;
  /** Origin base URL, e.g. "http://127.0.0.1:40123/"; /img/<file> is proxied to <origin>/<file>. */
  readonly originUrl: string;
  /** role `static`: the directory the origin serves. */
  readonly originDir?: string;
  /** role `image-filter`: the inner (resizing) server's port. */
  readonly resizePort?: number;
  /** role `image-filter`: output width in px. */
  readonly resizeWidth?: number;
  /** role `revalidate`: how long a cached answer is fresh. */
  readonly validSeconds?: number;
  readonly port: number;
  /** Private directory for the config, pid file, error log, temp paths and the cache. */
  readonly dir: string;
  readonly placement: Placement;
}

export interface RunningNginx {
  readonly url: string;
  readonly masterPid: number;
  /** The one worker, which serves every request. */
  readonly workerPid: number;
  /** Master, worker and cache manager: every long-lived process, whose CPU counts. */
  readonly allPids: readonly number[];
  readonly configPath: string;
  /** role `image-filter`: the inner server's access log (one line per resize). */
  readonly resizeLogPath: string;
  stop(): Promise<void>;
}

/** Debian's dynamic module for `image_filter` (package libnginx-mod-http-image-filter). */
export const IMAGE_FILTER_MODULE = "/usr/lib/nginx/modules/ngx_http_image_filter_module.so";

function buildLocations(options: NginxOptions, origin: URL): string {
  const role = options.role ?? "proxy-cache";
  if (role === "static")
    return `    location /img/ {
      alias ${options.originDir ?? "/nonexistent"}/;
      add_header X-Cache HIT;
    }`;
  if (role === "revalidate")
    return `    location /img/ {
      proxy_pass http://origin${origin.pathname};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache images;
      proxy_cache_valid 200 ${options.validSeconds ?? 1}s;
      proxy_cache_revalidate on;
      proxy_cache_use_stale error timeout http_500 http_502 http_503 http_504;
      proxy_cache_lock on;
      proxy_connect_timeout 2s;
      add_header X-Cache $upstream_cache_status;
    }`;
  if (role === "proxy-cache")
    return `    location /img/ {
      proxy_pass http://origin${origin.pathname};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache images;
      proxy_cache_valid 200 1h;
      proxy_cache_lock on;
      add_header X-Cache $upstream_cache_status;
    }`;
  // image-filter: lock timeouts far above one resize (~0.3-1 s for a 4K JPEG), so a herd waits for the one
  // resize instead of going to the resizer itself after the default 5 s.
  return `    location /img/ {
      proxy_pass http://127.0.0.1:${options.resizePort}/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache images;
      proxy_cache_valid 200 1h;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 60s;
      proxy_cache_lock_age 60s;
      proxy_read_timeout 60s;
      add_header X-Cache $upstream_cache_status;
    }
  }

  server {
    listen 127.0.0.1:${options.resizePort};
    access_log ${join(options.dir, "resize.log")};

    location / {
      proxy_pass http://origin${origin.pathname};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      image_filter resize ${options.resizeWidth ?? 1280} -;
      image_filter_buffer 20M;
      image_filter_jpeg_quality 80;
    }`;
}

/**
 * nginx as the peer: proxy_cache in front of the origin, one worker (fair against one Node process), no access log.
 * `tcp_nopush off`: with it on, proxy_cache hits stalled ~40 ms each on these machines (1,900 instead of 36,000 req/s).
 */
export function buildNginxConfig(options: NginxOptions): string {
  const { dir } = options;
  const origin = new URL(options.originUrl);
  // nginx started as root switches its worker to `nobody`, which could not write the cache under a 0700 temp dir.
  const user = process.getuid?.() === 0 ? "user root;\n" : "";
  const module = options.role === "image-filter" ? `load_module ${IMAGE_FILTER_MODULE};\n` : "";
  return `${module}${user}worker_processes 1;
master_process on;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;

events {
  worker_connections 4096;
}

http {
  access_log off;
  sendfile on;
  tcp_nopush off;
  tcp_nodelay on;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  client_body_temp_path ${join(dir, "client_body")};
  proxy_temp_path ${join(dir, "proxy_temp")};
  fastcgi_temp_path ${join(dir, "fastcgi_temp")};
  uwsgi_temp_path ${join(dir, "uwsgi_temp")};
  scgi_temp_path ${join(dir, "scgi_temp")};
  proxy_cache_path ${join(dir, "cache")} levels=1:2 keys_zone=images:10m max_size=1g inactive=1h use_temp_path=off;

  upstream origin {
    server ${origin.host};
    keepalive 16;
  }

  server {
    listen 127.0.0.1:${options.port};

    location = /healthz {
      return 204;
    }

${buildLocations(options, origin)}
  }
}
`;
}

/** Starts `nginx -c <conf> -g 'daemon off;'` as a child and waits until it answers. */
export async function startNginx(options: NginxOptions): Promise<RunningNginx> {
  await mkdir(options.dir, { recursive: true });
  const configPath = join(options.dir, "nginx.conf");
  await writeFile(configPath, buildNginxConfig(options));
  // -e: the startup error log, before the config's error_log applies (else nginx opens /var/log/nginx/error.log).
  const nginxArgs = ["-p", options.dir, "-e", join(options.dir, "error.log"), "-c", configPath, "-g", "daemon off;"];
  const [command, args] = placeCommand("nginx", nginxArgs, options.placement);
  const stderr = openSync(join(options.dir, "stderr.log"), "a");
  const child: ChildProcess = spawnTracked(command, args, { stdio: ["ignore", "ignore", stderr] });
  const url = `http://127.0.0.1:${options.port}`;
  try {
    await waitForHttp(`${url}/healthz`, child, 15_000);
  } catch (error) {
    const log = await readFile(join(options.dir, "error.log"), "utf8").catch(() => "");
    await stopChild(child);
    throw new Error(`nginx did not start: ${String(error)}\n${log}`, { cause: error });
  }
  const masterPid = child.pid ?? 0;
  // proxy_cache_path adds a cache manager and a cache loader beside the worker; the loader exits after ~1 min.
  const children = findChildPids(masterPid);
  for (const pid of children) trackPid(pid);
  const longLived = children.filter((pid) => !readCommandLine(pid).includes("cache loader"));
  const workers = children.filter((pid) => readCommandLine(pid).includes("worker process"));
  if (workers.length !== 1 || workers[0] === undefined) {
    await stopChild(child);
    throw new Error(`nginx: expected 1 worker under master ${masterPid}, found [${workers.join(", ")}]`);
  }
  const workerPid = workers[0];
  return {
    url,
    masterPid,
    workerPid,
    allPids: [masterPid, ...longLived],
    configPath,
    resizeLogPath: join(options.dir, "resize.log"),
    stop: async () => {
      if (isRunning(child)) await stopChild(child, 5000); // SIGTERM: fast shutdown, the master stops its worker
    },
  };
}
