// ipx (the unjs image server, TypeScript on sharp) as a bench peer, in its own process so its CPU and RSS are its own.
// `node --import tsx bench/lib/ipx-server.ts <port> <origin host:port>`; ipx is installed under bench/.peers by the
// bench (never in package.json), so it is loaded by path and typed here by the little the bench uses.
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { IPX_ENTRY } from "./ipx.ts";

interface IpxModule {
  createIPX(options: { storage?: unknown; httpStorage?: unknown }): unknown;
  createIPXNodeServer(ipx: unknown): (req: IncomingMessage, res: ServerResponse) => void;
  ipxHttpStorage(options: { domains: string[]; maxAge?: number }): unknown;
}

const [port = "0", originHost = "127.0.0.1"] = process.argv.slice(2);
const ipx = (await import(IPX_ENTRY)) as IpxModule;
const handler = ipx.createIPXNodeServer(
  ipx.createIPX({ httpStorage: ipx.ipxHttpStorage({ domains: [originHost.split(":")[0] ?? "127.0.0.1"] }) }),
);
const server = createServer((req, res) => {
  if (req.url === "/healthz") return void res.writeHead(204).end();
  handler(req, res);
});
server.listen(Number(port), "127.0.0.1");
process.on("SIGTERM", () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
