import { isIP } from "node:net";
import { ipv6Groups } from "../shared/ip.ts";

/**
 * The rate-limit identity of a client. IPv4 addresses are used whole; IPv6 addresses are cut to their /64, since
 * one subscriber usually owns a whole /64 and could rotate through 2⁶⁴ addresses; IPv4-mapped IPv6 becomes IPv4.
 */
export function clientKeyOf(address: string): string {
  const ip = address.trim();
  if (isIP(ip) === 4) return ip;
  if (isIP(ip) !== 6) return ip || "unknown";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1] !== undefined) return mapped[1];
  return `${ipv6Groups(ip)
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(":")}::/64`;
}

/**
 * The client's address: the socket peer, unless `trustedHops` > 0, in which case the X-Forwarded-For entry added by
 * the outermost trusted proxy (the `trustedHops`-th from the right) is used. Without trust, X-Forwarded-For is ignored
 * entirely, so a client cannot pick its own rate-limit identity.
 */
export function clientAddress(
  socketAddress: string | undefined,
  forwardedFor: string | undefined,
  trustedHops: number,
): string {
  const peer = socketAddress ?? "unknown";
  if (trustedHops <= 0 || forwardedFor === undefined || forwardedFor === "") return peer;
  const hops = forwardedFor
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  if (hops.length === 0) return peer;
  const candidate = hops[Math.max(0, hops.length - trustedHops)];
  return candidate !== undefined && isIP(candidate) !== 0 ? candidate : peer;
}
