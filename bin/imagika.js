#!/usr/bin/env -S node --no-memory-reducer
// Runs the TypeScript CLI directly (tsx registers the loader); works as `npx imagika ...` after `npm ci`.
// --no-memory-reducer: V8's memory reducer takes a process whose JavaScript thread is quiet for an idle one and runs
// full collections (2-5 in a row, 4-19 ms each); in an image proxy that thread is quiet while libvips works, so they
// landed inside cold transforms (+20-60 ms in 3 of 24 cold requests measured with --trace-gc, none without it). It can
// only be set on the command line (v8.setFlagsFromString comes too late: the reducer exists from start-up).
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
