// The floor for any Node.js server on the cached scenarios: node:http writing a Buffer from memory with only
// Content-Type and Content-Length, no routing, cache, limiter, logging or metrics. Not a product anyone would run; it
// shows how much of the gap to nginx is Node's HTTP stack itself.
// `node --import tsx bench/lib/node-bare-server.ts <port> <dir> <file>...`
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";

const [port = "0", dir = ".", ...names] = process.argv.slice(2);
const files = new Map<string, Buffer>();
for (const name of names) files.set(`/img/${name}`, readFileSync(join(dir, name)));

const server = createServer((req, res) => {
  if (req.url === "/healthz") return void res.writeHead(204).end();
  const body = files.get(req.url ?? "");
  if (body === undefined) return void res.writeHead(404, ["content-length", "0"]).end();
  res.writeHead(200, ["content-type", "image/jpeg", "content-length", String(body.byteLength)]);
  res.end(body);
});
server.listen(Number(port), "127.0.0.1");
process.on("SIGTERM", () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
