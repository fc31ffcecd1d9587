// `npm run screenshots`: the README's pictures, from the real UI. Builds web/, starts the stack (sample originals,
// origin, proxy with a few presets) on ports the OS picks, drives Debian's Chromium with playwright-core, and writes
// docs/images/gallery.png (the gallery beside the live dashboard) and docs/images/playground.png (the viewer with a
// crop, a focal point and its figures). Run it again whenever the UI changes; it takes about 30 s.
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import sharp from "sharp";
import { startStack } from "../test/helpers/stack.ts";
import { launchChromium } from "../test/helpers/browser.ts";
import { dragCropOnPicker } from "../test/helpers/source-picker.ts";
import { buildWeb } from "../test/helpers/web-build.ts";

const OUT_DIR = fileURLToPath(new URL("../docs/images/", import.meta.url));
const VIEWPORT = { width: 1440, height: 900 };
const SAMPLE_COUNT = 9;
/** Shown in the playground's preset list. */
const PRESETS = {
  thumb: "w=320&h=320&fit=cover&gravity=attention&f=auto",
  card: "w=640&h=400&fit=cover&q=70&f=auto",
  hero: "w=1600&q=70&f=auto",
};

/** Evaluates `expression` in the page until it is true (text, because this file has Node's types only, no DOM). */
async function waitUntil(page: Page, expression: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await page.evaluate(expression)) !== true) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
    await page.waitForTimeout(100);
  }
}

/** A screenshot as a palette PNG: the README's pictures stay a few hundred KB instead of 2 MB each. */
async function save(page: Page, name: string): Promise<void> {
  const png = await page.screenshot({ type: "png" });
  const path = `${OUT_DIR}${name}`;
  const info = await sharp(png).png({ palette: true, quality: 90, effort: 10, compressionLevel: 9 }).toFile(path);
  console.log(`wrote ${path} (${info.width}x${info.height}, ${Math.round(info.size / 1024)} KiB)`);
}

async function main(): Promise<void> {
  await buildWeb();
  await mkdir(OUT_DIR, { recursive: true });
  const stack = await startStack({ sampleCount: SAMPLE_COUNT, presets: PRESETS });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: VIEWPORT, colorScheme: "dark" });
    await page.goto(`${stack.proxyUrl}/`);
    const tiles = page.locator(".gallery .tile__button");
    await waitUntil(page, `document.querySelectorAll(".gallery .tile").length === ${SAMPLE_COUNT}`);
    for (let i = 0; i < SAMPLE_COUNT; i += 1) {
      await tiles.nth(i).scrollIntoViewIfNeeded(); // lazy tiles load once in view
      await waitUntil(page, `document.querySelectorAll(".gallery .tile")[${i}].classList.contains("tile--loaded")`);
    }
    await page.evaluate("window.scrollTo(0, 0)");
    // A few dashboard samples, so the charts have lines (it polls once a second).
    await page.waitForTimeout(4_000);
    await save(page, "gallery.png");

    await page.getByRole("button", { name: /^landscape-07\.jpg/ }).click();
    await page.getByLabel("Aspect").selectOption("4:5");
    // A crop of the middle 70% of the width, then a focal point inside it, left of centre.
    const box = await dragCropOnPicker(page, { x: 0.15, y: 0.1 }, { x: 0.85, y: 0.95 }, 5);
    await page.getByTestId("source-picker").click({ position: { x: box.width * 0.38, y: box.height * 0.45 } });
    await page.getByLabel("Sharpen").fill("1");
    await page.getByLabel("Format").selectOption("webp");
    const decoded = `(() => {
      const image = document.querySelector(".viewer__img");
      const url = document.querySelector('[data-testid="viewer-url"]')?.textContent ?? "";
      const stage = document.querySelector(".viewer__stage");
      return image !== null && image.complete && image.naturalWidth > 0 && url.includes("crop=") &&
        stage?.getAttribute("aria-busy") === "false" && /\\d/.test(document.querySelector('[data-testid="delivered-bytes"]')?.textContent ?? "");
    })()`;
    await waitUntil(page, decoded);
    await page.waitForTimeout(500); // the stale image's fade
    await save(page, "playground.png");
  } finally {
    await browser.close();
    await stack.close();
  }
}

await main();
