/** One list member of a header such as `name; key=value; flag`: its leading token and its parameters. */
export interface HeaderListMember {
  readonly token: string;
  /** Parameter names are lower-cased; a bare `flag` has the value `true`; quoted values are unescaped. */
  readonly params: ReadonlyMap<string, string | true>;
}

/**
 * Parses the `token; key=value, token; key="quoted, value"` shape shared by Server-Timing
 * (https://www.w3.org/TR/server-timing/) and Cache-Status (RFC 9211). Lenient: malformed members are skipped,
 * never thrown, because a header we cannot read should cost a blank field, not the page.
 */
export function parseHeaderList(header: string | null | undefined): HeaderListMember[] {
  if (!header) return [];
  const members: HeaderListMember[] = [];
  for (const rawMember of splitOutsideQuotes(header, ",")) {
    const [rawToken, ...rawParams] = splitOutsideQuotes(rawMember, ";");
    const token = rawToken?.trim() ?? "";
    if (token === "" || token.includes("=")) continue;
    const params = new Map<string, string | true>();
    for (const rawParam of rawParams) {
      const equals = rawParam.indexOf("=");
      const name = (equals === -1 ? rawParam : rawParam.slice(0, equals)).trim().toLowerCase();
      if (name === "" || params.has(name)) continue; // the first occurrence wins, as both specs say
      params.set(name, equals === -1 ? true : unquote(rawParam.slice(equals + 1).trim()));
    }
    members.push({ token, params });
  }
  return members;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  let isQuoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i] ?? "";
    if (isQuoted && char === "\\") {
      current += char + (text[i + 1] ?? "");
      i += 1;
    } else if (char === '"') {
      isQuoted = !isQuoted;
      current += char;
    } else if (!isQuoted && char === separator) {
      parts.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts;
}

function unquote(value: string): string {
  if (value.length < 2 || !value.startsWith('"') || !value.endsWith('"')) return value;
  return value.slice(1, -1).replace(/\\(.)/g, "$1");
}
