/** Value parsers for settings: each turns a raw string into a typed value or says what it expected. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; expected: string };
export type Parser<T> = (raw: string) => ParseResult<T>;

const ok = <T>(value: T): ParseResult<T> => ({ ok: true, value });
const fail = <T>(expected: string): ParseResult<T> => ({ ok: false, expected });

/** Whole numbers only: "1e3", "0x10", "12.0" and "" are refused so a typo never becomes a surprising limit. */
export function int(min: number, max: number): Parser<number> {
  const expected = `an integer ${min}-${max}`;
  return (raw) => {
    const text = raw.trim();
    if (!/^-?\d+$/.test(text)) return fail(expected);
    const value = Number(text);
    return Number.isSafeInteger(value) && value >= min && value <= max ? ok(value) : fail(expected);
  };
}

export function float(min: number, max: number): Parser<number> {
  const expected = `a number ${min}-${max}`;
  return (raw) => {
    const text = raw.trim();
    if (!/^-?\d+(\.\d+)?$/.test(text)) return fail(expected);
    const value = Number(text);
    return value >= min && value <= max ? ok(value) : fail(expected);
  };
}

export function bool(): Parser<boolean> {
  return (raw) => {
    const text = raw.trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(text)) return ok(true);
    if (["0", "false", "no", "off"].includes(text)) return ok(false);
    return fail("true or false");
  };
}

export function oneOf<const T extends string>(values: readonly T[]): Parser<T> {
  return (raw) => {
    const text = raw.trim() as T;
    return values.includes(text) ? ok(text) : fail(`one of ${values.join(", ")}`);
  };
}

export function text(options: { allowEmpty?: boolean } = {}): Parser<string> {
  return (raw) => (raw.length > 0 || options.allowEmpty === true ? ok(raw) : fail("a non-empty value"));
}

/** Comma-separated list; empty string is an empty list. */
export function list(): Parser<readonly string[]> {
  return (raw) =>
    ok(
      raw
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item.length > 0),
    );
}

/** Comma-separated integers min-max, sorted and without repeats; empty string is an empty list. */
export function intList(min: number, max: number): Parser<readonly number[]> {
  const one = int(min, max);
  return (raw) => {
    const values = new Set<number>();
    for (const item of raw.split(",")) {
      if (item.trim() === "") continue;
      const parsed = one(item);
      if (!parsed.ok) return fail(`comma-separated integers ${min}-${max}`);
      values.add(parsed.value);
    }
    return ok([...values].sort((a, b) => a - b));
  };
}

const BYTE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** Byte sizes: plain bytes, SI (`1GB` = 10⁹) or IEC (`512MiB` = 512·2²⁰); bare `k/m/g` mean IEC. */
export function bytes(min = 0, max = Number.MAX_SAFE_INTEGER): Parser<number> {
  const expected = `a byte size such as 1048576, 512MiB or 1GB (${min}-${max} bytes)`;
  return (raw) => {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw);
    if (!match) return fail(expected);
    const unit = BYTE_UNITS[(match[2] ?? "").toLowerCase()];
    if (unit === undefined) return fail(expected);
    const value = Math.round(Number(match[1]) * unit);
    return Number.isSafeInteger(value) && value >= min && value <= max ? ok(value) : fail(expected);
  };
}

/** `auto` (the program works the value out) or what `inner` accepts. */
export function autoOr<T>(inner: Parser<T>): Parser<T | "auto"> {
  return (raw) => {
    if (raw.trim().toLowerCase() === "auto") return ok("auto" as const);
    const result = inner(raw);
    return result.ok ? result : fail(`auto or ${result.expected}`);
  };
}

const BIT_UNITS: Record<string, number> = {
  bit: 1 / 8,
  kbit: 1000 / 8,
  mbit: 1e6 / 8,
  gbit: 1e9 / 8,
  "": 1,
  b: 1,
  kb: 1000,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
};

/** Bandwidth as bytes per second: `50Mbit`, `2MB` (per second), `0` for unlimited. */
export function bandwidth(): Parser<number> {
  const expected = "a bandwidth such as 50Mbit, 10MB or 0 (unlimited)";
  return (raw) => {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*?)(?:\/s|ps)?\s*$/.exec(raw);
    if (!match) return fail(expected);
    const unit = BIT_UNITS[(match[2] ?? "").toLowerCase()];
    if (unit === undefined) return fail(expected);
    return ok(Math.round(Number(match[1]) * unit));
  };
}
