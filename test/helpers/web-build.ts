import { fileURLToPath } from "node:url";
import { build } from "vite";

const VITE_CONFIG = fileURLToPath(new URL("../../web/vite.config.ts", import.meta.url));

/**
 * Builds what the proxy serves from web/dist, so a browser sees the current sources. vitest sets NODE_ENV=test and
 * vite keeps a NODE_ENV it finds, which would bundle React's development build (StrictMode mounts twice, so the
 * viewer fetches twice); the production bundle is what users get.
 */
export async function buildWeb(): Promise<void> {
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = "production";
  try {
    await build({ configFile: VITE_CONFIG, mode: "production", logLevel: "warn" });
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
}
