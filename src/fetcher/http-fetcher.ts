import { Agent, errors as undiciErrors, request } from "undici";
import type { Dispatcher } from "undici";
import type { OriginConfig } from "../config/config.ts";
import { ProxyError } from "../errors.ts";
import type { Fetcher } from "./fetcher.ts";

/** Largest origin listing (/index.json) relayed to /api/images. */
const MAX_LISTING_BYTES = 8 * 1024 * 1024;

/**
 * Fetches originals from an HTTP(S) base URL through one keep-alive undici Agent. Every download is bounded three
 * ways: bytes (maxSourceBytes, counted while streaming, whatever Content-Length claims), pauses (headers/body
 * timeouts) and a total deadline.
 */
export class HttpFetcher implements Fetcher {
  readonly description: string;
  readonly #baseUrl: string;
  readonly #config: OriginConfig;
  readonly #agent: Agent;

  constructor(config: OriginConfig) {
    if (config.spec.kind !== "http") throw new Error("HttpFetcher needs an http(s) origin");
    this.#config = config;
    this.#baseUrl = config.spec.baseUrl;
    this.description = config.spec.baseUrl;
    this.#agent = new Agent({
      connections: config.connections,
      connect: { timeout: config.connectTimeoutMs },
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.bodyTimeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  /** URL of `path` under the base URL, each segment percent-encoded again. */
  urlOf(path: string): string {
    return this.#baseUrl + path.split("/").map(encodeURIComponent).join("/");
  }

  async fetchOriginal(path: string, signal?: AbortSignal): Promise<Buffer> {
    return this.#download(this.urlOf(path), this.#config.maxSourceBytes, signal);
  }

  /** The origin's `/index.json` listing, relayed by /api/images. */
  async fetchListing(signal?: AbortSignal): Promise<Buffer> {
    return this.#download(`${this.#baseUrl}index.json`, MAX_LISTING_BYTES, signal);
  }

  async checkReady(signal?: AbortSignal): Promise<void> {
    const deadline = AbortSignal.timeout(Math.min(this.#config.connectTimeoutMs + this.#config.headersTimeoutMs, 5000));
    try {
      const response = await request(this.#baseUrl, {
        dispatcher: this.#agent,
        method: "HEAD",
        signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
      });
      await response.body.dump();
      if (response.statusCode >= 500) throw new ProxyError("ORIGIN_FAILED", `origin answered ${response.statusCode}`);
    } catch (error) {
      throw translateError(error, deadline);
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  async #download(url: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    const deadline = AbortSignal.timeout(this.#config.totalTimeoutMs);
    const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, {
        dispatcher: this.#agent,
        method: "GET",
        signal: combined,
        // identity: we never inflate a compressed body, so a gzip bomb cannot expand past the byte cap.
        headers: { accept: "image/avif,image/webp,image/*;q=0.9,*/*;q=0.5", "accept-encoding": "identity" },
      });
    } catch (error) {
      throw translateError(error, deadline);
    }
    const { statusCode, headers, body } = response;
    if (statusCode !== 200) {
      discard(body);
      throw statusError(statusCode);
    }
    const declared = Number(headers["content-length"]);
    if (Number.isFinite(declared) && declared > maxBytes) {
      discard(body);
      throw new ProxyError(
        "SOURCE_TOO_LARGE",
        `the original is ${declared} bytes, more than the ${maxBytes}-byte limit`,
      );
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        total += chunk.byteLength;
        if (total > maxBytes) {
          discard(body);
          throw new ProxyError("SOURCE_TOO_LARGE", `the original is larger than the ${maxBytes}-byte limit`);
        }
        chunks.push(chunk);
      }
    } catch (error) {
      throw translateError(error, deadline);
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total); // length checked
  }
}

/** Abandons a response body; undici reports the abort as an 'error' event, which is expected here. */
function discard(body: Dispatcher.ResponseData["body"]): void {
  body.on("error", () => {});
  body.destroy();
}

function statusError(statusCode: number): ProxyError {
  if (statusCode === 404 || statusCode === 410)
    return new ProxyError("ORIGIN_NOT_FOUND", "the origin has no such image");
  if (statusCode === 401 || statusCode === 403)
    return new ProxyError("ORIGIN_FORBIDDEN", `the origin refused access (${statusCode})`);
  return new ProxyError("ORIGIN_FAILED", `the origin answered ${statusCode}`);
}

/** Network and undici errors become ORIGIN_* codes here, keeping the cause. */
export function translateError(error: unknown, deadline: AbortSignal): ProxyError {
  if (error instanceof ProxyError) return error;
  if (
    deadline.aborted ||
    error instanceof undiciErrors.ConnectTimeoutError ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError
  ) {
    return new ProxyError("ORIGIN_TIMEOUT", "the origin did not answer in time", { cause: error });
  }
  const code = (error as { code?: unknown } | null)?.code;
  const detail = typeof code === "string" ? ` (${code})` : "";
  return new ProxyError("ORIGIN_FAILED", `the origin could not be reached or broke the connection${detail}`, {
    cause: error,
  });
}
