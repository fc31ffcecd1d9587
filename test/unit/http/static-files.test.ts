import { mkdtemp, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../../src/app.ts";
import { negotiateEncoding } from "../../../src/http/static-files.ts";
import { startProxy } from "../../helpers/proxy.ts";
import { WireClient, destroyWireClients, get } from "../../helpers/wire-client.ts";

let dir: string;
let app: App;
const script = Buffer.from(
  Array.from({ length: 2000 }, (_, i) => `export const value${i} = "${"abc".repeat(i % 7)}";\n`).join(""),
);
const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "imagika-static-"));
  await mkdir(join(dir, "assets"));
  await writeFile(join(dir, "index.html"), "<!doctype html><title>t</title>");
  await writeFile(join(dir, "assets", "app.js"), script);
  await writeFile(join(dir, "assets", "logo.png"), png);
  app = await startProxy({ origin: dir, webRoot: dir });
});

afterAll(async () => {
  destroyWireClients();
  await app.close();
});

async function fetchRaw(path: string, acceptEncoding?: string, method = "GET") {
  const client = await WireClient.open(app.port);
  client.write(get(path, acceptEncoding === undefined ? "" : `Accept-Encoding: ${acceptEncoding}\r\n`, method));
  return client.read(method);
}

describe("static files", () => {
  it.each([
    ["gzip, deflate, br", "br"],
    ["gzip", "gzip"],
    ["br;q=0, gzip", "gzip"],
    ["GZIP;q=0.5", "gzip"],
    ["*", "br"],
    ["*;q=0", undefined],
    ["identity", undefined],
    ["br;q=0,gzip;q=0", undefined],
    ["", undefined],
    [undefined, undefined],
  ])("negotiates %j as %s", (accept, coding) => {
    expect(negotiateEncoding(accept)).toBe(coding);
  });

  it("sends text files brotli- or gzip-compressed when accepted, with Vary, and as they are otherwise", async () => {
    const br = await fetchRaw("/assets/app.js", "gzip, deflate, br");
    expect(br.headers).toMatchObject({ "content-encoding": "br", vary: "Accept-Encoding" });
    expect(Number(br.headers["content-length"])).toBe(br.body.length);
    expect(br.body.length).toBeLessThan(script.length / 4);
    expect(brotliDecompressSync(br.body)).toEqual(script);

    const gz = await fetchRaw("/assets/app.js", "gzip");
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(gz.body)).toEqual(script);

    const plain = await fetchRaw("/assets/app.js");
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.headers["vary"]).toBe("Accept-Encoding");
    expect(plain.body).toEqual(script);

    const head = await fetchRaw("/assets/app.js", "br", "HEAD");
    expect([head.headers["content-encoding"], head.headers["content-length"], head.body.length]).toEqual([
      "br",
      String(br.body.length),
      0,
    ]);
  });

  it("leaves images alone", async () => {
    const res = await fetchRaw("/assets/logo.png", "br, gzip");
    expect(res.headers["content-encoding"]).toBeUndefined();
    expect(res.headers["vary"]).toBeUndefined();
    expect(res.body).toEqual(png);
  });

  it("compresses a file again once it changes on disk", async () => {
    await writeFile(join(dir, "index.html"), "<!doctype html><title>one</title>");
    expect(brotliDecompressSync((await fetchRaw("/", "br")).body).toString()).toContain("one");
    await writeFile(join(dir, "index.html"), "<!doctype html><title>second version</title>");
    expect(brotliDecompressSync((await fetchRaw("/", "br")).body).toString()).toContain("second version");
  });
});
