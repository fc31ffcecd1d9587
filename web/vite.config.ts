import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

/** Where the proxy listens in development (`npm run dev`); the app only talks to it over HTTP. */
const PROXY_TARGET = "http://127.0.0.1:8080";

export default defineConfig({
  // Absolute, so `vite build web` and `build({ configFile: "web/vite.config.ts" })` from the repo root agree.
  root: fileURLToPath(new URL(".", import.meta.url)),
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true },
  server: {
    proxy: Object.fromEntries(["/img", "/api", "/healthz", "/metrics"].map((path) => [path, PROXY_TARGET])),
  },
});
