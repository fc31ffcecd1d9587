import { GetObjectCommand, HeadBucketCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import type { OriginConfig } from "../config/config.ts";
import { ProxyError } from "../errors.ts";
import { BodyCollector } from "./body-collector.ts";
import type { FetchOptions, Fetcher, OriginReply } from "./fetcher.ts";
import { cleanValidators, parseOriginCaching } from "./origin-caching.ts";

/**
 * Originals from S3 (or an S3-compatible store via --s3-endpoint, path-style). Credentials come from the standard
 * AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles). The object is streamed and cut at
 * maxSourceBytes whatever ContentLength says.
 */
export class S3Fetcher implements Fetcher {
  readonly description: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #config: OriginConfig;

  constructor(config: OriginConfig) {
    if (config.spec.kind !== "s3") throw new Error("S3Fetcher needs an s3:// origin");
    this.#config = config;
    this.#bucket = config.spec.bucket;
    this.#prefix = config.spec.prefix;
    this.description = `s3://${config.spec.bucket}/${config.spec.prefix}`;
    this.#client = new S3Client({
      region: config.s3Region,
      ...(config.s3Endpoint !== "" ? { endpoint: config.s3Endpoint, forcePathStyle: true } : {}),
      maxAttempts: 2,
      requestHandler: { connectionTimeout: config.connectTimeoutMs, requestTimeout: config.headersTimeoutMs },
    });
  }

  /** Validators are the object's ETag and LastModified; its Cache-Control and Expires metadata set freshness. */
  async fetchOriginal(path: string, options: FetchOptions = {}): Promise<OriginReply> {
    const deadline = AbortSignal.timeout(this.#config.totalTimeoutMs);
    const abortSignal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
    const maxBytes = this.#config.maxSourceBytes;
    const asked = cleanValidators(options.validators?.etag, options.validators?.lastModified);
    const lastModified = asked.lastModified === undefined ? undefined : new Date(asked.lastModified);
    try {
      const object = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#prefix + path,
          ...(asked.etag !== undefined
            ? { IfNoneMatch: asked.etag }
            : lastModified
              ? { IfModifiedSince: lastModified }
              : {}),
        }),
        { abortSignal },
      );
      const caching = parseOriginCaching({
        etag: object.ETag,
        lastModified: object.LastModified?.toUTCString(),
        cacheControl: object.CacheControl,
        expires: object.ExpiresString,
      });
      const body = object.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
      if (!body) throw new ProxyError("ORIGIN_FAILED", "S3 returned no body");
      try {
        const collected = new BodyCollector(maxBytes, object.ContentLength, options.onSize);
        for await (const chunk of body) collected.push(chunk, false); // each chunk is a read of its own
        return { status: 200, body: collected.take(), caching };
      } catch (error) {
        body.destroy?.(); // SOURCE_TOO_LARGE (declared or counted) or a broken stream: stop the download
        throw error;
      }
    } catch (error) {
      // The SDK reports a 304 as an error (it has no body to parse); the validators asked with still hold.
      const isConditional = asked.etag !== undefined || asked.lastModified !== undefined;
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 304 && isConditional)
        return { status: 304, caching: parseOriginCaching({ etag: asked.etag, lastModified: asked.lastModified }) };
      throw translateS3Error(error, deadline);
    }
  }

  async checkReady(): Promise<void> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }), {
        abortSignal: AbortSignal.timeout(5000),
      });
    } catch (error) {
      throw translateS3Error(error, undefined);
    }
  }

  close(): Promise<void> {
    this.#client.destroy();
    return Promise.resolve();
  }
}

function translateS3Error(error: unknown, deadline: AbortSignal | undefined): ProxyError {
  if (error instanceof ProxyError) return error;
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode ?? 0;
    if (error.name === "NoSuchKey" || error.name === "NotFound" || status === 404) {
      return new ProxyError("ORIGIN_NOT_FOUND", "the origin has no such image", { cause: error });
    }
    if (status === 403 || status === 401 || error.name === "AccessDenied") {
      return new ProxyError("ORIGIN_FORBIDDEN", `S3 refused access (${error.name})`, { cause: error });
    }
    return new ProxyError("ORIGIN_FAILED", `S3 answered ${status} ${error.name}`, {
      cause: error,
      ...(status >= 500 ? { originStatus: status } : {}),
    });
  }
  const name = (error as { name?: unknown } | null)?.name;
  if (deadline?.aborted || name === "TimeoutError" || name === "AbortError") {
    return new ProxyError("ORIGIN_TIMEOUT", "S3 did not answer in time", { cause: error });
  }
  return new ProxyError("ORIGIN_FAILED", "S3 could not be reached", { cause: error });
}
