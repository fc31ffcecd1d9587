import { BlockList, isIP } from "node:net";

/** Expands an IPv6 address (with optional embedded IPv4 tail or zone) to its eight 16-bit groups. */
export function ipv6Groups(ip: string): number[] {
  const zoneless = ip.split("%")[0] ?? ip;
  const [head = "", tail] = zoneless.split("::");
  const split = (part: string): number[] =>
    part === ""
      ? []
      : part.split(":").flatMap((group) => {
          if (!group.includes(".")) return [parseInt(group, 16) || 0];
          const [a = 0, b = 0, c = 0, d = 0] = group.split(".").map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const left = split(head);
  const right = tail === undefined ? [] : split(tail);
  const zeros = tail === undefined ? [] : new Array<number>(Math.max(0, 8 - left.length - right.length)).fill(0);
  return [...left, ...zeros, ...right].slice(0, 8);
}

function v4FromGroups(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/**
 * IPv4 addresses an IPv6 address carries inside it: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d),
 * NAT64 (64:ff9b::/96 and 64:ff9b:1::/48), 6to4 (2002:AABB:CCDD::) and Teredo (2001:0::/32, server and XOR'ed client).
 */
export function embeddedIPv4(ip: string): string[] {
  const g = ipv6Groups(ip);
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const out: string[] = [];
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && (g5 === 0xffff || g5 === 0) && (g6 !== 0 || g7 > 1)) {
    out.push(v4FromGroups(g6, g7));
  }
  if (g0 === 0x64 && g1 === 0xff9b) out.push(v4FromGroups(g6, g7));
  if (g0 === 0x2002) out.push(v4FromGroups(g1, g2));
  if (g0 === 0x2001 && g1 === 0) out.push(v4FromGroups(g2, g3), v4FromGroups(g6 ^ 0xffff, g7 ^ 0xffff));
  return out;
}

const BLOCKED = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8], // "this network", incl. the unspecified 0.0.0.0
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // CGNAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, incl. cloud metadata 169.254.169.254
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved + broadcast
] as const) {
  BLOCKED.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["100::", 64], // discard
  ["2001:db8::", 32], // documentation
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // old site-local
  ["ff00::", 8], // multicast
  ["2001::", 32], // Teredo: tunnels to arbitrary IPv4, never a legitimate image origin
] as const) {
  BLOCKED.addSubnet(network, prefix, "ipv6");
}

/**
 * True when connecting to `ip` could reach this machine, a private network or cloud metadata: loopback,
 * unspecified, private (RFC 1918, ULA), link-local, CGNAT, multicast, reserved, and IPv6 forms embedding such an IPv4.
 */
export function isBlockedAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return BLOCKED.check(ip, "ipv4");
  if (family !== 6) return true; // not an address: refuse rather than guess
  if (BLOCKED.check(ip, "ipv6")) return true;
  return embeddedIPv4(ip).some((v4) => BLOCKED.check(v4, "ipv4"));
}
