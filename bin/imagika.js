#!/usr/bin/env node
// Runs the TypeScript CLI directly (tsx registers the loader); works as `npx imagika ...` after `npm ci`.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
