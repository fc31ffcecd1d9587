import { lookup as dnsLookup } from "node:dns";
import type { LookupAddress, LookupAllOptions, LookupOneOptions } from "node:dns";
import { isIP } from "node:net";
import { isBlockedAddress } from "../shared/ip.ts";
import { ProxyError } from "../errors.ts";

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A dns.lookup replacement for the sockets of untrusted fetches: the addresses a name resolves to are checked
 * when the connection is made, so DNS rebinding (a name that answers a public IP to a pre-check and 127.0.0.1 to
 * the connect) cannot slip through.
 */
export function guardedLookup(
  hostname: string,
  options: LookupOneOptions | LookupAllOptions,
  callback: LookupCallback,
): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const blocked = addresses.find((entry) => isBlockedAddress(entry.address));
    if (blocked) {
      const refusal: NodeJS.ErrnoException = new Error(`${hostname} resolves to ${blocked.address}, a blocked address`);
      refusal.code = "EBLOCKEDADDRESS";
      return callback(refusal, []);
    }
    if ((options as LookupAllOptions).all === true) return callback(null, addresses);
    const first = addresses[0];
    if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), []);
    callback(null, first.address, first.family);
  });
}

/** Host from a URL without IPv6 brackets. */
function bareHost(url: URL): string {
  return url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
}

/**
 * Checks an untrusted URL before any connection: http(s) only, no credentials, and an IP literal must not be blocked.
 * WHATWG URL parsing has already normalised decimal, octal and hex IPv4 spellings (http://2130706433/ → 127.0.0.1).
 */
export function checkUntrustedUrl(url: URL, allowPrivate: boolean): void {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ProxyError("FORBIDDEN", `only http and https sources are allowed, not ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "")
    throw new ProxyError("FORBIDDEN", "source URLs may not carry credentials");
  const host = bareHost(url);
  if (!allowPrivate && isIP(host) !== 0 && isBlockedAddress(host)) {
    throw new ProxyError("FORBIDDEN", `the source address ${host} is private, loopback or reserved`);
  }
}

/** `images.example.com` matches itself; `*.example.com` matches any subdomain (not the apex). Case-insensitive. */
export function hostMatches(host: string, patterns: readonly string[]): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  return patterns.some((pattern) => {
    const p = pattern.toLowerCase().trim();
    if (p.startsWith("*.")) return name.endsWith(p.slice(1)) && name.length > p.length - 1;
    return name === p;
  });
}
