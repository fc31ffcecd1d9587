import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../helpers/browser.ts";
import { startStack } from "../helpers/stack.ts";

/**
 * The web app against the real stack (origin server + proxy serving web/dist) in headless Chromium (the npm package's,
 * or IMAGIKA_CHROMIUM's: test/helpers/browser.ts). Screenshots go to test-artifacts/ (git-ignored) so a human can
 * look at the gallery and the viewer after a run.
 */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const ARTIFACTS = join(REPO_ROOT, "test-artifacts");
const SAMPLE_COUNT = 4;
/** Low enough that a 200-request burst must run out of tokens; high enough for the page's own requests. */
const RATE_LIMIT_PER_SECOND = 20;
const RATE_BURST = 40;
const BURST_SIZE = 200;
const VIEWPORT = { width: 1280, height: 900 };

type Stack = Awaited<ReturnType<typeof startStack>>;

// No skip when Chromium is missing: `npm ci` brings one, and a missing browser must fail loudly (launchChromium throws).
describe("web app end to end (Chromium)", () => {
  let stack: Stack;
  let browser: Browser;

  beforeAll(async () => {
    await buildWeb();
    await mkdir(ARTIFACTS, { recursive: true });
    stack = await startStack({
      rateLimit: RATE_LIMIT_PER_SECOND,
      rateBurst: RATE_BURST,
      adminToken: "e2e-admin-token",
      sampleCount: SAMPLE_COUNT,
    });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  it("shows every original through /img/ with f=auto, decoded", async () => {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    const imageRequests: string[] = [];
    page.on("request", (request) => {
      if (request.resourceType() === "image") imageRequests.push(request.url());
    });

    await page.goto(`${stack.proxyUrl}/`);
    const listed = await listedPaths(stack.proxyUrl);
    expect(listed).toHaveLength(SAMPLE_COUNT);
    await waitForGalleryDecoded(page, listed.length);

    const sources = await inPage<string[]>(
      page,
      `[...document.querySelectorAll(".gallery img")].map((i) => i.currentSrc)`,
    );
    expect(sources).toHaveLength(listed.length);
    for (const src of sources) {
      const url = new URL(src);
      expect(url.pathname).toMatch(/^\/img\//);
      expect(url.searchParams.get("f")).toBe("auto");
    }
    const gallerySrcs = imageRequests.filter((url) => new URL(url).pathname.startsWith("/img/"));
    expect(gallerySrcs.length).toBeGreaterThanOrEqual(listed.length);
    for (const url of gallerySrcs) expect(new URL(url).searchParams.get("f")).toBe("auto");

    await page.screenshot({ path: join(ARTIFACTS, "gallery.png") });
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);

  it("gets the gallery from the proxy's cache the second time, and the dashboard shows hits", async () => {
    // A fresh context has an empty HTTP cache, so every image request reaches the proxy again.
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    const cacheStatuses: string[] = [];
    page.on("response", (response) => {
      if (response.request().resourceType() === "image" && new URL(response.url()).pathname.startsWith("/img/")) {
        cacheStatuses.push(response.headers()["cache-status"] ?? "");
      }
    });

    await page.goto(`${stack.proxyUrl}/`);
    await waitForGalleryDecoded(page, SAMPLE_COUNT);
    expect(cacheStatuses.length).toBeGreaterThanOrEqual(SAMPLE_COUNT);
    for (const status of cacheStatuses) expect(status).toBe("imagika; hit");

    await expect
      .poll(async () => percentOf(await page.getByTestId("stat-hit-ratio").textContent()), {
        timeout: 10_000,
      })
      .toBeGreaterThan(0);
    await context.close();
  }, 90_000);

  it("opens the viewer from the keyboard and shows a variant smaller than the original", async () => {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${stack.proxyUrl}/`);
    await waitForGalleryDecoded(page, SAMPLE_COUNT);

    const firstTile = page.locator(".tile__button").first();
    await firstTile.focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog");
    await expect.poll(() => dialog.isVisible()).toBe(true);
    await expect.poll(async () => page.getByTestId("delivered-bytes").textContent(), { timeout: 30_000 }).toMatch(/\d/);
    const viewerDecoded = `(() => {
      const image = document.querySelector(".viewer__img");
      return image !== null && image.complete && image.naturalWidth > 0;
    })()`;
    await expect.poll(() => inPage<boolean>(page, viewerDecoded), { timeout: 30_000 }).toBe(true);

    const originalBytes = parseBytes(await page.getByTestId("original-bytes").textContent());
    const deliveredBytes = parseBytes(await page.getByTestId("delivered-bytes").textContent());
    expect(deliveredBytes).toBeGreaterThan(0);
    expect(deliveredBytes).toBeLessThan(originalBytes);
    expect(await page.getByTestId("saving").textContent()).toMatch(/% smaller$/);
    expect(await page.getByTestId("cache-status").textContent()).toMatch(/Hit|Miss/);
    expect(await page.getByTestId("viewer-url").textContent()).toMatch(/^\/img\/.+\?w=\d+&f=auto/);
    // The Server-Timing breakdown (read through the Resource Timing API, header as fallback) lists the total.
    expect(await page.getByRole("list", { name: "Server-Timing breakdown" }).textContent()).toMatch(/total/);
    const resourceTiming = await inPage<number>(
      page,
      `performance.getEntriesByType("resource").filter((e) => e.name.includes("/img/") && e.serverTiming.some((t) => t.name === "total")).length`,
    );
    expect(resourceTiming).toBeGreaterThan(0); // Timing-Allow-Origin lets the browser expose the proxy's timings
    await page.screenshot({ path: join(ARTIFACTS, "viewer.png") });

    await page.keyboard.press("Escape");
    await expect.poll(() => dialog.count()).toBe(0);
    const focused = await inPage<string | null>(page, `document.activeElement?.getAttribute("aria-label") ?? null`);
    expect(focused).toBe(await firstTile.getAttribute("aria-label"));
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);

  it("shows 429s on the page when a burst is larger than the rate limit", async () => {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    await page.goto(`${stack.proxyUrl}/`);
    await waitForGalleryDecoded(page, SAMPLE_COUNT);

    await page.getByTestId("burst-count").fill(String(BURST_SIZE));
    await page.getByRole("button", { name: `Fire ${BURST_SIZE} requests` }).click();
    const result = page.getByRole("status", { name: "Burst result" });
    await result.waitFor({ timeout: 60_000 });

    const ok = Number(await page.getByTestId("burst-ok").textContent());
    const limited = Number.parseInt((await page.getByTestId("burst-rate-limited").textContent()) ?? "", 10);
    expect(limited).toBeGreaterThan(0);
    expect(ok).toBeGreaterThan(0);
    expect(ok + limited).toBeLessThanOrEqual(BURST_SIZE);
    await result.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, "burst.png") });
    await context.close();
  }, 90_000);
});

/**
 * Builds what the proxy serves from web/dist, so the test sees the current sources. vitest sets NODE_ENV=test and
 * vite keeps a NODE_ENV it finds, which would bundle React's development build (StrictMode mounts twice, so the
 * viewer fetches twice); the production bundle is what users get.
 */
async function buildWeb(): Promise<void> {
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = "production";
  try {
    await build({ configFile: join(REPO_ROOT, "web/vite.config.ts"), mode: "production", logLevel: "warn" });
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
}

async function listedPaths(proxyUrl: string): Promise<string[]> {
  const response = await fetch(`${proxyUrl}/api/images`);
  const body = (await response.json()) as { images: { path: string }[] };
  return body.images.map((image) => image.path);
}

/** Scrolls every tile into view (the images are lazy) and waits until each one has decoded. */
async function waitForGalleryDecoded(page: Page, count: number): Promise<void> {
  const tiles = page.locator(".gallery .tile__button");
  await expect.poll(() => tiles.count(), { timeout: 15_000 }).toBe(count);
  for (let i = 0; i < count; i += 1) await tiles.nth(i).scrollIntoViewIfNeeded();
  const allDecoded = `(() => {
    const images = [...document.querySelectorAll(".gallery img")];
    return images.length === ${count} && images.every((image) => image.complete && image.naturalWidth > 0);
  })()`;
  await expect.poll(() => inPage<boolean>(page, allDecoded), { timeout: 60_000 }).toBe(true);
  // The page's own state too: every tile swapped its placeholder for the image (the fade takes 250 ms).
  await expect.poll(() => page.locator(".gallery .tile--loaded").count(), { timeout: 10_000 }).toBe(count);
  await page.waitForTimeout(300);
  await page.evaluate("window.scrollTo(0, 0)");
}

/**
 * Evaluates a JavaScript expression in the page (over DevTools, so the app's CSP, which forbids eval, still holds for
 * the page itself; `waitForFunction` with a string would need eval). The code is text because this file is
 * type-checked with Node's libs only (no DOM); the caller names the result type it expects.
 */
async function inPage<T>(page: Page, expression: string): Promise<T> {
  const value: unknown = await page.evaluate(expression);
  return value as T;
}

/** Uncaught errors and console errors (CSP violations and failed loads are reported there) of a page. */
function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  return errors;
}

/** "4.1 MB" → 4_100_000 (the page's SI formatting, read back). */
function parseBytes(text: string | null): number {
  const match = /^(-?[\d.]+) (B|kB|MB|GB)$/.exec(text?.trim() ?? "");
  if (!match) throw new Error(`not a byte size: ${text}`);
  const scale = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[match[2] as "B" | "kB" | "MB" | "GB"];
  return Number(match[1]) * scale;
}

function percentOf(text: string | null): number {
  return Number.parseFloat(text ?? "");
}
