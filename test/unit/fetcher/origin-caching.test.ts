import { describe, expect, it } from "vitest";
import { conditionalHeaders, parseOriginCaching } from "../../../src/fetcher/origin-caching.ts";

const NOW = Date.parse("Wed, 01 Jan 2025 12:00:00 GMT");

describe("parseOriginCaching (RFC 9111 as a shared cache reads it)", () => {
  it("takes s-maxage before max-age before Expires − Date, minus Age", () => {
    expect(parseOriginCaching({ cacheControl: "max-age=60, s-maxage=600" }, NOW).lifetimeSeconds).toBe(600);
    expect(parseOriginCaching({ cacheControl: "public, max-age=60", expires: "x" }, NOW).lifetimeSeconds).toBe(60);
    const expires = { expires: "Wed, 01 Jan 2025 13:00:00 GMT", date: "Wed, 01 Jan 2025 12:30:00 GMT" };
    expect(parseOriginCaching(expires, NOW).lifetimeSeconds).toBe(1800); // the origin's own Date, not ours
    expect(parseOriginCaching({ expires: "Wed, 01 Jan 2025 13:00:00 GMT" }, NOW).lifetimeSeconds).toBe(3600);
    expect(parseOriginCaching({ expires: "0" }, NOW).lifetimeSeconds).toBe(0); // malformed: already expired
    expect(parseOriginCaching({ cacheControl: "max-age=60", age: "45" }, NOW).lifetimeSeconds).toBe(15);
    expect(parseOriginCaching({ cacheControl: "max-age=60", age: "99" }, NOW).lifetimeSeconds).toBe(0);
    expect(parseOriginCaching({}, NOW).lifetimeSeconds).toBeUndefined();
    expect(parseOriginCaching({ cacheControl: "max-age=soon" }, NOW).lifetimeSeconds).toBeUndefined();
  });

  it("reads no-store and a bare private as not storable, private=field as storable", () => {
    expect(parseOriginCaching({ cacheControl: "no-store" }).isNoStore).toBe(true);
    expect(parseOriginCaching({ cacheControl: "Private, max-age=60" }).isNoStore).toBe(true);
    expect(parseOriginCaching({ cacheControl: 'private="set-cookie", max-age=60' }).isNoStore).toBe(false);
  });

  it("never lets a no-cache or must-revalidate response be served stale", () => {
    expect(parseOriginCaching({ cacheControl: "no-cache, max-age=600" })).toMatchObject({
      lifetimeSeconds: 0,
      mustRevalidate: true,
    });
    expect(parseOriginCaching({ cacheControl: "max-age=60, proxy-revalidate" }).mustRevalidate).toBe(true);
    expect(parseOriginCaching({ cacheControl: "max-age=60" }).mustRevalidate).toBe(false);
  });

  it("keeps only well-formed validators, so none can split a header on the way back", () => {
    const good = parseOriginCaching({ etag: 'W/"abc-1"', lastModified: "Wed, 01 Jan 2025 11:00:00 GMT" });
    expect(good.validators).toEqual({ etag: 'W/"abc-1"', lastModified: "Wed, 01 Jan 2025 11:00:00 GMT" });
    const bad = parseOriginCaching({ etag: "unquoted", lastModified: "not a date" });
    expect(bad.validators).toEqual({});
    expect(conditionalHeaders({ etag: '"a"\r\nx: 1', lastModified: "Wed, 01 Jan 2025 11:00:00 GMT" })).toEqual({
      "if-modified-since": "Wed, 01 Jan 2025 11:00:00 GMT",
    });
    expect(conditionalHeaders({ etag: '"a"', lastModified: "Wed, 01 Jan 2025 11:00:00 GMT" })).toEqual({
      "if-none-match": '"a"',
    });
    expect(conditionalHeaders(undefined)).toEqual({});
  });
});
