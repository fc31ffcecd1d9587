import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../helpers/browser.ts";
import { dragCropOnPicker } from "../helpers/source-picker.ts";
import { startStack } from "../helpers/stack.ts";
import { buildWeb } from "../helpers/web-build.ts";

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
const PRESETS = { square: "w=200&h=200&fit=cover&f=webp" };

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
      presets: PRESETS,
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

  it("fixes what Lighthouse reported: an eager LCP image, named meters, a meta description", async () => {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    await page.goto(`${stack.proxyUrl}/`);
    await expect.poll(() => page.locator(".gallery .tile--loaded").count(), { timeout: 30_000 }).toBe(SAMPLE_COUNT);

    // The Largest Contentful Paint is a tile's image (the gallery's first row), and it was not lazy-loaded.
    const lcp = await inPage<{ tag: string; loading: string | null } | null>(
      page,
      `new Promise((resolve) => {
        let last = null;
        new PerformanceObserver((list) => {
          last = list.getEntries().at(-1)?.element ?? last;
        }).observe({ type: "largest-contentful-paint", buffered: true });
        // Candidates come as elements paint; every tile has, so a second more settles the largest.
        setTimeout(() => resolve(last && { tag: last.tagName, loading: last.getAttribute("loading") }), 1000);
      })`,
    );
    expect(lcp).toEqual({ tag: "IMG", loading: "eager" });
    const first = page.locator(".gallery img").first();
    expect(await first.getAttribute("fetchpriority")).toBe("high");

    const meters = page.getByRole("meter");
    await expect.poll(() => meters.count(), { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
    expect(await page.getByRole("meter", { name: /\S/ }).count()).toBe(await meters.count());
    expect(await page.getByRole("meter", { name: "Cache", exact: true }).count()).toBe(1);

    const description = await page.locator('meta[name="description"]').getAttribute("content");
    expect(description?.length).toBeGreaterThanOrEqual(50);
    // A tile is named by what it shows (WCAG 2.5.3), as Chromium computes names.
    const tile = page.locator(".tile__button").first();
    const caption = (await tile.locator(".tile__name").textContent()) ?? "";
    expect(await page.getByRole("button", { name: caption }).count()).toBe(1);
    await context.close();
  }, 90_000);

  it("shows ThumbHash placeholders while the tiles' images load", async () => {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    const placeholderTypes: string[] = [];
    page.on("response", (response) => {
      if (new URL(response.url()).searchParams.get("f") === "thumbhash")
        placeholderTypes.push(response.headers()["content-type"] ?? "");
    });
    // Hold every tile image back (a slow network), while the placeholders pass.
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    await context.route(
      (url) => url.pathname.startsWith("/img/") && url.searchParams.get("f") === "auto",
      async (route) => {
        await released;
        await route.continue();
      },
    );
    await page.goto(`${stack.proxyUrl}/`);
    const waiting = page.locator(".gallery .tile--loading .tile__frame--placeholder");
    await expect.poll(() => waiting.count(), { timeout: 30_000 }).toBe(SAMPLE_COUNT);
    const background = await inPage<string>(
      page,
      `getComputedStyle(document.querySelector(".gallery .tile--loading .tile__frame--placeholder")).backgroundImage`,
    );
    expect(background).toMatch(/^url\("data:image\/png;base64,/);
    expect(placeholderTypes).toHaveLength(SAMPLE_COUNT);
    for (const type of placeholderTypes) expect(type).toMatch(/^text\/plain/);
    await page.screenshot({ path: join(ARTIFACTS, "placeholders.png") });

    release();
    await expect.poll(() => page.locator(".gallery .tile--loaded").count(), { timeout: 30_000 }).toBe(SAMPLE_COUNT);
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
    expect(await page.getByTestId("viewer-url").textContent()).toMatch(/^\/img\/.+\?w=\d+(&dpr=[\d.]+)?&f=auto$/);
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
    const focused = await inPage<string | null>(page, `document.activeElement?.textContent ?? null`);
    expect(focused).toBe(await firstTile.textContent());
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);

  it("plays with the options: the proxy's presets, a crop dragged and a focal point clicked on the source", async () => {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${stack.proxyUrl}/`);
    await waitForGalleryDecoded(page, SAMPLE_COUNT);
    await page.locator(".tile__button").first().click();
    const url = page.getByTestId("viewer-url");
    await expect.poll(() => variantShown(page), { timeout: 30_000 }).not.toBeNull();

    const preset = control(page, "Preset");
    await expect.poll(() => preset.locator("option").allTextContents()).toEqual(["None", "square"]);
    await preset.selectOption("square");
    expect(await url.textContent()).toMatch(/\?p=square$/);
    await expect.poll(() => variantShown(page), { timeout: 30_000 }).toEqual({ width: 200, height: 200 });
    expect(await page.locator(".facts__row", { hasText: "Delivered" }).textContent()).toContain("WebP · 200 × 200");
    await preset.selectOption("");

    const box = await dragCropOnPicker(page, { x: 0.25, y: 0.25 }, { x: 0.75, y: 0.75 });
    const crop = /&crop=(\d+),(\d+),(\d+),(\d+)/
      .exec((await url.textContent()) ?? "")
      ?.slice(1)
      .map(Number);
    const [left = 0, top = 0, width = 0, height = 0] = crop ?? [];
    // A quarter to three quarters of a 3840 x 2160 original, to within the pixels a CSS pixel of the picker covers.
    for (const [got, want] of [
      [left, 960],
      [top, 540],
      [width, 1920],
      [height, 1080],
    ] as const) {
      expect(Math.abs(got - want)).toBeLessThanOrEqual(16);
    }
    await control(page, "Aspect").selectOption("1:1");
    await page.getByTestId("source-picker").click({ position: { x: box.width * 0.6, y: box.height * 0.4 } });
    expect(await url.textContent()).toMatch(/&h=(\d+)&fit=cover&f=auto&fp=0\.6\d*,0\.4\d*&crop=/);
    await control(page, "Rotate").selectOption("90");
    await control(page, "Format").selectOption("webp");
    await expect.poll(() => url.textContent()).toMatch(/&f=webp&fp=[\d.,]+&crop=[\d,]+&rot=90$/);
    const shown = await pollVariant(page);
    expect(shown.width).toBe(shown.height);
    expect(await page.locator(".facts__row", { hasText: "Delivered" }).textContent()).toContain("WebP");
    expect(await page.getByRole("list", { name: "Server-Timing breakdown" }).textContent()).toMatch(/total/);
    await page.screenshot({ path: join(ARTIFACTS, "playground.png") });
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);

  it("purges every path starting with a prefix from the admin panel, and only those", async () => {
    const [purged, kept] = await listedPaths(stack.proxyUrl);
    const cacheOf = async (path: string): Promise<string | null> => {
      const res = await fetch(`${stack.proxyUrl}/img/${encodeURIComponent(path)}?w=64`);
      await res.arrayBuffer();
      return res.headers.get("x-cache");
    };
    await cacheOf(purged!);
    await cacheOf(kept!);
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    await page.goto(`${stack.proxyUrl}/#admin`);
    await page.getByLabel("Admin token").fill("e2e-admin-token");
    await page.getByLabel("Path prefix").fill(purged!);
    await page.getByRole("button", { name: "Purge prefix" }).click();
    await expect
      .poll(async () => page.locator(".admin-result").textContent(), { timeout: 10_000 })
      .toContain(`Purged every path starting with “${purged!}” (`);
    expect(await cacheOf(purged!)).toBe("MISS");
    expect(await cacheOf(kept!)).toBe("HIT");
    await context.close();
  }, 60_000);

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

/** A playground select by its label (its accessible name goes on with the option it shows: "Preset None"). */
function control(page: Page, label: string) {
  return page.getByRole("combobox", { name: new RegExp(`^${label}\\b`) });
}

/** The playground's variant once the stage has settled on the URL shown (null while it loads). */
async function variantShown(page: Page): Promise<{ width: number; height: number } | null> {
  return inPage(
    page,
    `(() => {
      const stage = document.querySelector(".viewer__stage");
      const image = document.querySelector(".viewer__img");
      if (stage?.getAttribute("aria-busy") !== "false" || !image?.complete || image.naturalWidth === 0) return null;
      return { width: image.naturalWidth, height: image.naturalHeight };
    })()`,
  );
}

async function pollVariant(page: Page): Promise<{ width: number; height: number }> {
  await expect.poll(() => variantShown(page), { timeout: 30_000 }).not.toBeNull();
  const shown = await variantShown(page);
  if (!shown) throw new Error("the variant went away");
  return shown;
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
