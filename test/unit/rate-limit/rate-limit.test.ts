import { describe, expect, it } from "vitest";
import { clientAddress, clientKeyOf } from "../../../src/rate-limit/client-key.ts";
import { TokenBucketLimiter } from "../../../src/rate-limit/token-bucket.ts";

describe("TokenBucketLimiter", () => {
  it("allows a burst, refuses past it, and refills at the sustained rate", () => {
    let now = 0;
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 5, now: () => now });
    const allowed = Array.from({ length: 7 }, () => limiter.take("a").allowed);
    expect(allowed).toEqual([true, true, true, true, true, false, false]);
    expect(limiter.take("a").retryAfterSeconds).toBe(1);
    expect(limiter.take("b").allowed).toBe(true); // buckets are per client
    now += 250; // 2.5 tokens
    expect(limiter.take("a")).toMatchObject({ allowed: true, remaining: 1 });
    expect(limiter.take("a").allowed).toBe(true);
    expect(limiter.take("a").allowed).toBe(false);
  });

  it("forgets idle clients (bounded memory) without changing their outcome", () => {
    let now = 0;
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 2, now: () => now, maxClients: 100 });
    for (let i = 0; i < 1000; i++) limiter.take(`client-${i}`);
    expect(limiter.size).toBeLessThanOrEqual(100);
    now += 10_000;
    expect(limiter.take("client-999")).toMatchObject({ allowed: true, remaining: 1 });
  });
});

describe("client keys", () => {
  it("keys IPv6 clients by their /64 and unwraps IPv4-mapped addresses", () => {
    expect(clientKeyOf("2001:db8:1:2:3:4:5:6")).toBe("2001:db8:1:2::/64");
    expect(clientKeyOf("2001:db8:1:2::ffff")).toBe("2001:db8:1:2::/64");
    expect(clientKeyOf("2001:0db8:0001:0002:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(clientKeyOf("::ffff:192.0.2.1")).toBe("192.0.2.1");
    expect(clientKeyOf("192.0.2.1")).toBe("192.0.2.1");
  });

  it("uses X-Forwarded-For only with trusted hops, and only the trusted entry", () => {
    expect(clientAddress("10.0.0.9", "1.2.3.4", 0)).toBe("10.0.0.9");
    expect(clientAddress("10.0.0.9", "6.6.6.6, 1.2.3.4", 1)).toBe("1.2.3.4");
    expect(clientAddress("10.0.0.9", "6.6.6.6, 1.2.3.4, 10.0.0.8", 2)).toBe("1.2.3.4");
    expect(clientAddress("10.0.0.9", "not-an-ip", 1)).toBe("10.0.0.9");
  });
});
