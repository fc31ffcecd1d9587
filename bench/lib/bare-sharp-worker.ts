// The bare sharp floor as its own process, so it can run on the servers' core: `node --import tsx
// bench/lib/bare-sharp-worker.ts <original>` with an IPC channel. Each message (a BareSharpJob) runs the
// pipeline once on the original and answers `{ ms, bytes }` (or `{ error }`), timed here, without the IPC.
import { readFileSync } from "node:fs";
import { runBareSharp } from "./bare-sharp.ts";
import type { BareSharpJob } from "./bare-sharp.ts";

const path = process.argv[2];
if (path === undefined || process.send === undefined) {
  console.error("usage: node --import tsx bench/lib/bare-sharp-worker.ts <original> (with an IPC channel)");
  process.exit(2);
}
const original = readFileSync(path);
const send = process.send.bind(process);

process.on("message", (job: BareSharpJob) => {
  const started = performance.now();
  runBareSharp(original, job).then(
    (bytes) => send({ ms: performance.now() - started, bytes }),
    (error: unknown) => send({ error: String(error) }),
  );
});
process.on("disconnect", () => process.exit(0));
send({ ready: true });
