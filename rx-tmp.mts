import { Agent, request } from "undici";
import http from "node:http";
const agent = new Agent({ connections: 8 });
const ka = new http.Agent({ keepAlive: true });
async function viaIter(i: number) { const r = await request(`http://127.0.0.1:31500/p${i % 20}.jpg`, { dispatcher: agent }); const chunks: Buffer[] = []; for await (const c of r.body) chunks.push(c as Buffer); return Buffer.concat(chunks); }
async function viaData(i: number) { const r = await request(`http://127.0.0.1:31500/p${i % 20}.jpg`, { dispatcher: agent }); const chunks: Buffer[] = []; return new Promise<Buffer>((res, rej) => { r.body.on("data", (c: Buffer) => chunks.push(c)); r.body.on("end", () => res(Buffer.concat(chunks))); r.body.on("error", rej); }); }
function viaHttp(i: number) { return new Promise<Buffer>((res, rej) => { http.get(`http://127.0.0.1:31500/p${i % 20}.jpg`, { agent: ka }, (r) => { const chunks: Buffer[] = []; r.on("data", (c: Buffer) => chunks.push(c)); r.on("end", () => res(Buffer.concat(chunks))); }).on("error", rej); }); }
for (const [name, fn] of [["iter", viaIter], ["data", viaData], ["http", viaHttp], ["iter", viaIter], ["data", viaData], ["http", viaHttp]] as const) {
  for (let i = 0; i < 10; i++) await fn(i);
  const us: number[] = []; const ws: number[] = [];
  for (let i = 0; i < 15; i++) { const c0 = process.cpuUsage(); const s = performance.now(); await fn(i); ws.push(performance.now() - s); const c = process.cpuUsage(c0); us.push((c.user + c.system) / 1000); }
  us.sort((a, b) => a - b); ws.sort((a, b) => a - b);
  console.log(name.padEnd(6), "wall med", ws[7]!.toFixed(1), "cpu med", us[7]!.toFixed(1), "min", us[0]!.toFixed(1));
}
process.exit(0);
