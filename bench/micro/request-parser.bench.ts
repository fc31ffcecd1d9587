import { bench, describe } from "vitest";
import { RequestParser } from "../../src/http/engine/request-parser.ts";

// Per request on the hot path: the head of every request goes through llhttp (WebAssembly) and our callbacks.
// `npx vitest bench --run bench/micro/request-parser.bench.ts`
const WRK = Buffer.from("GET /img/small-1280.jpg HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", "latin1");
const BROWSER = Buffer.from(
  "GET /img/photos/2024/beach.jpg?w=640&f=auto HTTP/1.1\r\nHost: images.example.com\r\n" +
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n" +
    "Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate, br\r\n" +
    "Accept-Language: en-GB,en;q=0.9\r\nReferer: https://www.example.com/gallery\r\n" +
    'If-None-Match: "p36__UIiD_GXViuPkLLcnNg9HEe"\r\nSec-Fetch-Dest: image\r\n\r\n',
  "latin1",
);

function parseOne(parser: RequestParser, bytes: Buffer): void {
  const result = parser.feed(bytes);
  if (result.kind !== "head") throw new Error("no head");
  if (result.rest.length > 0) parser.feed(result.rest);
}

describe("request head parsing (per request)", () => {
  const parser = new RequestParser();
  bench("wrk's request (1 header)", () => parseOne(parser, WRK));
  bench("a browser's image request (9 headers)", () => parseOne(parser, BROWSER));
});
