import type { BodyFormat } from "../shared/image-format.ts";
import type { Source } from "./source.ts";

/** What every cache tier stores: a response body with the facts needed to answer from it. */
export interface Variant {
  readonly body: Buffer;
  readonly format: BodyFormat;
  /** Strong validator, quoted: `"<base64url sha-256 prefix>"`. */
  readonly etag: string;
  readonly width?: number;
  readonly height?: number;
  /** Size of the original this variant was made from (what the client would have paid without the proxy). */
  readonly originalBytes: number;
  /** The version of the original it is (an original) or was made from (a variant), and its freshness. */
  readonly source: Source;
}

/** A cache tier: memory now; disk and Redis slot in behind the same seam. */
export interface CacheTier {
  readonly name: string;
  get(key: string): Variant | undefined | Promise<Variant | undefined>;
  /** True when the entry was stored (a tier may refuse one: too large, tier down). */
  set(key: string, variant: Variant): boolean | Promise<boolean>;
  delete(key: string): void | Promise<void>;
}
