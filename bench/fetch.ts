// The origin fetch of a cold miss: a 3.2 MB sample original over loopback through OriginClient (reads into reused
// memory) against undici's request() (a fresh buffer per socket read), interleaved, after short and long idle gaps
// (a cold miss usually follows an idle connection). `node --import tsx bench/fetch.ts [--quick]`
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";
import { generateSamples } from "../origin-server/samples.ts";
import { OriginClient } from "../src/fetcher/origin-client.ts";
import { median } from "./lib/report.ts";

const isQuick = process.argv.includes("--quick");
const ROUNDS = isQuick ? 6 : 20;
const GAPS_MS = [50, 1000];

const dir = await mkdtemp(join(tmpdir(), "imagika-bench-fetch-"));
try {
  const { files } = await generateSamples({ dir, count: 1, seed: 42 });
  const file = files[0] ?? "landscape-01.jpg";
  // As in `npm run bench`: the clients (the proxy's side) on core 0, the origin (`imagika origin`) on core 1.
  let canPin = true;
  try {
    execFileSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)], { stdio: "ignore" });
  } catch {
    canPin = false;
  }
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const originArgs = ["--import", "tsx", "src/main.ts", "origin", "--dir", dir, "--port", String(port)];
  const origin = canPin
    ? spawn("taskset", ["-c", "1", process.execPath, ...originArgs], { stdio: "ignore" })
    : spawn(process.execPath, originArgs, { stdio: "ignore" });
  const url = new URL(`http://127.0.0.1:${port}/${file}`);
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(url, { method: "HEAD" })).ok) break;
    } catch {
      if (i > 100) throw new Error("the origin did not start");
    }
    await sleep(100);
  }
  const client = new OriginClient({
    host: url.hostname,
    port: Number(url.port),
    hostHeader: url.host,
    maxConnections: 4,
    connectTimeoutMs: 5000,
    headersTimeoutMs: 10_000,
    bodyTimeoutMs: 10_000,
    keepAliveMs: 30_000,
  });
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  const ways: Record<string, () => Promise<number>> = {
    OriginClient: async () =>
      (await client.get(url.pathname, "accept-encoding: identity\r\n", 100e6, new AbortController().signal)).body
        ?.byteLength ?? 0,
    // What the proxy did before OriginClient: the body copied into one buffer of the declared length.
    "undici request()": async () => {
      const response = await request(url, { dispatcher: agent });
      const body = Buffer.allocUnsafe(Number(response.headers["content-length"]));
      let bytes = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) bytes += chunk.copy(body, bytes);
      return bytes;
    },
  };
  console.log(`| idle gap | client | median ms | min-max ms |\n| --- | --- | --- | --- |`);
  for (const gap of GAPS_MS) {
    const times = new Map<string, number[]>();
    for (let round = -1; round < ROUNDS; round++) {
      for (const [name, fetchOnce] of Object.entries(ways)) {
        await sleep(gap);
        const started = performance.now();
        const bytes = await fetchOnce();
        const ms = performance.now() - started;
        if (bytes < 1_000_000) throw new Error(`${name} fetched only ${bytes} bytes`);
        if (round >= 0) times.set(name, [...(times.get(name) ?? []), ms]); // round -1 warms up
      }
    }
    for (const [name, ms] of times)
      console.log(
        `| ${gap} ms | ${name} | ${median(ms).toFixed(2)} | ${Math.min(...ms).toFixed(1)}-${Math.max(...ms).toFixed(1)} |`,
      );
  }
  client.close();
  await agent.close();
  origin.kill("SIGTERM");
} finally {
  await rm(dir, { recursive: true, force: true });
}
