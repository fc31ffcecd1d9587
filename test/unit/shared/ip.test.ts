import { describe, expect, it } from "vitest";
import { embeddedIPv4, isBlockedAddress } from "../../../src/shared/ip.ts";
import { hostMatches } from "../../../src/fetcher/ssrf.ts";

describe("isBlockedAddress", () => {
  it.each([
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.255",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:7f00:1",
    "::127.0.0.1",
    "::a9fe:a9fe",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
    "2002:c0a8:101::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "not-an-ip",
  ])("blocks %s", (ip) => {
    expect(isBlockedAddress(ip)).toBe(true);
  });

  it.each([
    "93.184.216.34",
    "8.8.8.8",
    "172.32.0.1",
    "100.128.0.1",
    "2606:4700::6810:85e5",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
  ])("allows public %s", (ip) => {
    expect(isBlockedAddress(ip)).toBe(false);
  });

  it("finds the IPv4 address inside 6to4 and NAT64 forms", () => {
    expect(embeddedIPv4("2002:c0a8:101::1")).toEqual(["192.168.1.1"]);
    expect(embeddedIPv4("64:ff9b::c0a8:101")).toEqual(["192.168.1.1"]);
  });
});

describe("hostMatches", () => {
  it("matches exact hosts and subdomain wildcards, not the apex or look-alikes", () => {
    expect(hostMatches("images.example.com", ["images.example.com"])).toBe(true);
    expect(hostMatches("a.cdn.example.com", ["*.example.com"])).toBe(true);
    expect(hostMatches("example.com", ["*.example.com"])).toBe(false);
    expect(hostMatches("evilexample.com", ["*.example.com"])).toBe(false);
    expect(hostMatches("IMAGES.EXAMPLE.COM.", ["images.example.com"])).toBe(true);
  });
});
