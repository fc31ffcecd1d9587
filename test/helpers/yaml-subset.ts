/**
 * A reader for the YAML the deployment files (compose.yaml, deploy/kubernetes/) are written in, so that tests can
 * check them without a YAML library: block mappings and sequences (a sequence may sit at its key's indentation),
 * plain, 'single' and "double" quoted scalars, one-line flow sequences of scalars, `{}`, `[]`, comments and `---`
 * between documents. Plain scalars resolve as YAML 1.2's core schema does (null, booleans, numbers, else strings).
 * Anything else (anchors, tags, block scalars, flow mappings, multi-line flows, tabs) throws, naming the line: the
 * files must stay inside what this reads, never be read differently from a real parser.
 */
export type YamlValue = null | boolean | number | string | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  readonly indent: number;
  readonly text: string;
  readonly number: number;
}

/** Every document of `source`, in order. */
export function parseYamlSubset(source: string, name = "yaml"): YamlValue[] {
  const documents: Line[][] = [[]];
  source.split("\n").forEach((raw, index) => {
    const number = index + 1;
    if (raw.includes("\t")) throw new Error(`${name}:${number}: tab characters are outside the supported subset`);
    const text = stripComment(raw, `${name}:${number}`).trimEnd();
    if (text.trim() === "") return;
    if (text === "---") {
      documents.push([]);
      return;
    }
    if (text.startsWith("%") || text === "...") throw new Error(`${name}:${number}: directives are not supported`);
    documents.at(-1)?.push({ indent: text.length - text.trimStart().length, text: text.trim(), number });
  });
  return documents.filter((lines) => lines.length > 0).map((lines) => new Reader(lines, name).document());
}

const KEY = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s"'#[\]{},&*!|>%@`?-][^:]*?|-[^\s:][^:]*?):(?:\s+(.*))?$/;

function isSequenceItem(text: string): boolean {
  return text === "-" || text.startsWith("- ");
}

class Reader {
  readonly #lines: Line[];
  readonly #name: string;
  #position = 0;

  constructor(lines: Line[], name: string) {
    this.#lines = lines;
    this.#name = name;
  }

  document(): YamlValue {
    const first = this.#lines[0];
    if (first === undefined) return null;
    const value = this.#block(first.indent);
    const rest = this.#peek();
    if (rest !== undefined) throw this.#error(rest, "unexpected indentation");
    return value;
  }

  #peek(): Line | undefined {
    return this.#lines[this.#position];
  }

  #error(line: Line, problem: string): Error {
    return new Error(`${this.#name}:${line.number}: ${problem}: ${line.text}`);
  }

  #block(indent: number): YamlValue {
    const line = this.#peek();
    if (line === undefined) return null;
    if (isSequenceItem(line.text)) return this.#sequence(indent);
    if (KEY.test(line.text)) return this.#mapping(indent);
    // A lone scalar as a whole document or block (not used by the files, but valid).
    this.#position++;
    return parseInline(line.text, (problem) => this.#error(line, problem));
  }

  #sequence(indent: number): YamlValue[] {
    const items: YamlValue[] = [];
    for (let line = this.#peek(); line?.indent === indent && isSequenceItem(line.text); line = this.#peek()) {
      this.#position++;
      const rest = line.text.slice(1).trimStart();
      if (rest === "") {
        items.push(this.#nested(indent, false));
      } else if (KEY.test(rest)) {
        // `- key: value`: a mapping whose first entry shares the dash's line, the others at its column.
        const column = indent + line.text.length - rest.length;
        this.#lines.splice(this.#position, 0, { indent: column, text: rest, number: line.number });
        items.push(this.#mapping(column));
      } else {
        const current = line;
        items.push(parseInline(rest, (problem) => this.#error(current, problem)));
      }
    }
    return items;
  }

  #mapping(indent: number): { [key: string]: YamlValue } {
    const map: { [key: string]: YamlValue } = {};
    for (let line = this.#peek(); line?.indent === indent && !isSequenceItem(line.text); line = this.#peek()) {
      this.#position++;
      const match = KEY.exec(line.text);
      if (!match) throw this.#error(line, "expected `key: value`");
      const current = line;
      const key = parseKey(match[1] ?? "", (problem) => this.#error(current, problem));
      if (Object.hasOwn(map, key)) throw this.#error(line, `duplicate key '${key}'`);
      const rest = match[2] ?? "";
      map[key] =
        rest === "" ? this.#nested(indent, true) : parseInline(rest, (problem) => this.#error(current, problem));
    }
    return map;
  }

  /** The block under a `key:` or `-` with nothing after it; null when there is none. */
  #nested(indent: number, isMappingValue: boolean): YamlValue {
    const next = this.#peek();
    if (next === undefined || next.indent < indent) return null;
    if (next.indent > indent) return this.#block(next.indent);
    if (isMappingValue && isSequenceItem(next.text)) return this.#sequence(indent);
    return null;
  }
}

function parseKey(raw: string, error: (problem: string) => Error): string {
  const value = parseInline(raw, error);
  if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean")
    throw error("keys must be scalars");
  return String(value);
}

/** A scalar or a one-line flow sequence of scalars. */
function parseInline(raw: string, error: (problem: string) => Error): YamlValue {
  const text = raw.trim();
  if (text === "{}") return {};
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) throw error("flow sequences must open and close on one line");
    const inner = text.slice(1, -1).trim();
    if (inner === "") return [];
    return splitFlow(inner, error).map((item) => {
      if (/^[[{]/.test(item)) throw error("nested flow collections are not supported");
      return parseScalar(item, error);
    });
  }
  return parseScalar(text, error);
}

function splitFlow(inner: string, error: (problem: string) => Error): string[] {
  const items: string[] = [];
  let current = "";
  let quote: string | undefined;
  for (let i = 0; i < inner.length; i++) {
    const char = inner[i] ?? "";
    if (quote === '"' && char === "\\") {
      current += char + (inner[i + 1] ?? "");
      i++;
      continue;
    }
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
      current += char;
      continue;
    }
    if (char === '"' || char === "'") quote = char;
    if (char === ",") {
      items.push(current.trim());
      current = "";
      continue;
    }
    current += char;
  }
  if (quote !== undefined) throw error("unterminated quoted scalar");
  if (current.trim() !== "") items.push(current.trim());
  return items;
}

function parseScalar(text: string, error: (problem: string) => Error): YamlValue {
  if (text.startsWith('"')) {
    if (!/^"(?:[^"\\]|\\.)*"$/.test(text)) throw error("malformed double-quoted scalar");
    try {
      return JSON.parse(text) as string; // the JSON escapes are a subset of YAML's
    } catch {
      throw error("unsupported escape in a double-quoted scalar");
    }
  }
  if (text.startsWith("'")) {
    if (!/^'(?:[^']|'')*'$/.test(text)) throw error("malformed single-quoted scalar");
    return text.slice(1, -1).replaceAll("''", "'");
  }
  if (/^[&*!|>%@`{[\]},?]/.test(text)) throw error("anchors, tags, block scalars and flow mappings are not supported");
  if (/:\s|:$/.test(text)) throw error("a plain scalar cannot contain ': '");
  if (/^(?:null|Null|NULL|~)$/.test(text)) return null;
  if (/^(?:true|True|TRUE)$/.test(text)) return true;
  if (/^(?:false|False|FALSE)$/.test(text)) return false;
  if (/^[-+]?\d+$/.test(text)) return Number.parseInt(text, 10);
  if (/^0o[0-7]+$/.test(text)) return Number.parseInt(text.slice(2), 8);
  if (/^0x[0-9a-fA-F]+$/.test(text)) return Number.parseInt(text.slice(2), 16);
  if (/^[-+]?(?:\.\d+|\d+(?:\.\d*)?)(?:[eE][-+]?\d+)?$/.test(text)) return Number(text);
  if (/^[-+]?\.(?:inf|Inf|INF)$/.test(text)) return text.startsWith("-") ? -Infinity : Infinity;
  if (/^\.(?:nan|NaN|NAN)$/.test(text)) return Number.NaN;
  return text;
}

/** The line without its comment: `#` at the start or after whitespace, outside quotes. */
function stripComment(line: string, where: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quote === '"' && char === "\\") {
      i++;
      continue;
    }
    if (quote === "'" && char === "'" && line[i + 1] === "'") {
      i++; // '' is a quote inside a single-quoted scalar
      continue;
    }
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
      continue;
    }
    if (char === '"' || char === "'") {
      // Quotes open a scalar only at its start; inside a plain scalar they are ordinary characters.
      const before = line.slice(0, i).trimEnd();
      if (before === "" || /[:\-,[]$/.test(before)) quote = char;
      continue;
    }
    if (char === "#" && (i === 0 || /\s/.test(line[i - 1] ?? ""))) return line.slice(0, i);
  }
  if (quote !== undefined) throw new Error(`${where}: unterminated quoted scalar`);
  return line;
}
