#!/usr/bin/env node
// Runs the TypeScript CLI directly (tsx registers the loader); works as `npx imagika ...` after `npm ci`.
// Run the proxy as `node --no-memory-reducer bin/imagika.js proxy` (as `npm start` does): V8's memory reducer takes a
// process whose JavaScript thread is quiet for an idle one and runs full collections (2-5 in a row, 4-19 ms each); in
// an image proxy that thread is quiet while libvips works, so they landed inside cold transforms (+20-60 ms in 3 of
// 24 cold requests measured with --trace-gc, none without it). The flag cannot be set at run time (the reducer exists
// from start-up) nor in NODE_OPTIONS, and not in this shebang either: `env -S` is missing from busybox (Alpine images).
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
