import { pino } from "pino";
import { createApp } from "../../src/app.ts";
import type { App } from "../../src/app.ts";
import { buildConfig, defaultSettings } from "../../src/config/config.ts";
import { parseOriginSpec } from "../../src/config/proxy-settings.ts";
import type { ProxySettings } from "../../src/config/proxy-settings.ts";

export interface ProxyOverrides extends Partial<Omit<ProxySettings, "origin">> {
  /** http(s) base URL or directory; parsed like --origin. */
  readonly origin: string;
}

/** Starts the real proxy on 127.0.0.1:0 with default settings plus overrides; logs are silent unless asked. */
export async function startProxy(overrides: ProxyOverrides, options: { now?: () => number } = {}): Promise<App> {
  const origin = parseOriginSpec(overrides.origin);
  if (!origin.ok) throw new Error(`bad origin ${overrides.origin}: ${origin.expected}`);
  const config = buildConfig({
    ...defaultSettings(),
    port: 0,
    host: "127.0.0.1",
    rateLimit: 0,
    shutdownTimeoutMs: 2000,
    ...overrides,
    origin: origin.value,
  });
  return createApp(config, { ...options, logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }) });
}
