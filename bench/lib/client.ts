import { Agent, request } from "undici";

/**
 * The benchmark's HTTP client for image requests. undici's `request` over one shared keep-alive pool, not `fetch`:
 * measured here, 200 concurrent requests for a cached ~50 KB variant took 23-48 ms with `request` and 94-140 ms with
 * `fetch` (its WHATWG streams and Response objects), so with `fetch` the herd's wall time was mostly the client's own
 * CPU on the core it shares with the origin.
 */
const agent = new Agent({ connections: 1024, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 });

export interface Timed {
  readonly ms: number;
  readonly bytes: number;
  /** 0 when the request failed (connection error, timeout). */
  readonly status: number;
  /** The response's Server-Timing header, when it sent one (Imagika does). */
  readonly serverTiming?: string;
}

/** What the bench's clients accept unless told otherwise: WebP, like every current browser. */
export const DEFAULT_ACCEPT = "image/webp,image/*";

/** GET `url`, reading the whole body; never throws (a failure is status 0). */
export async function timedGet(url: string, accept = DEFAULT_ACCEPT, timeoutMs = 120_000): Promise<Timed> {
  const started = performance.now();
  try {
    const res = await request(url, {
      dispatcher: agent,
      headers: { accept },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const body = await res.body.arrayBuffer();
    const ms = performance.now() - started;
    const serverTiming = res.headers["server-timing"];
    return {
      ms,
      bytes: body.byteLength,
      status: res.statusCode,
      ...(typeof serverTiming === "string" ? { serverTiming } : {}),
    };
  } catch {
    return { ms: performance.now() - started, bytes: 0, status: 0 };
  }
}
