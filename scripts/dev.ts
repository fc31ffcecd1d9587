// `npm run dev`: the whole stack (samples, origin, proxy; pretty logs) plus Vite's dev server with hot reload on
// http://127.0.0.1:5173/, which forwards /img, /api, /healthz and /metrics to the proxy (web/vite.config.ts).
import { fileURLToPath } from "node:url";
import { createServer } from "vite";
import { createApp } from "../src/app.ts";
import { runCli } from "../src/cli.ts";

const webRoot = fileURLToPath(new URL("../web", import.meta.url));
await runCli(["start", "--log-pretty", ...process.argv.slice(2)], { createApp });
if (process.exitCode === undefined || process.exitCode === 0) {
  const vite = await createServer({
    root: webRoot,
    configFile: `${webRoot}/vite.config.ts`,
    server: { host: "127.0.0.1", port: 5173 },
  });
  await vite.listen();
  console.log("  Vite dev server (hot reload)  http://127.0.0.1:5173/\n");
  process.once("SIGINT", () => void vite.close());
  process.once("SIGTERM", () => void vite.close());
}
