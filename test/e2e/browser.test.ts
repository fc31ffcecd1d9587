import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM_ENV, findChromium, launchChromium } from "../helpers/browser.ts";

/** The lookup every browser test goes through (test/helpers/browser.ts): it finds a browser or fails saying why. */
describe("the Chromium the end-to-end tests use", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "imagika-browser-"));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`fails loudly when ${CHROMIUM_ENV} names no executable file`, async () => {
    const missing = join(dir, "no-such-chromium");
    await expect(findChromium({ [CHROMIUM_ENV]: missing })).rejects.toThrow(
      `${CHROMIUM_ENV}=${missing}: not an executable file`,
    );
    const notExecutable = join(dir, "chromium.txt");
    await writeFile(notExecutable, "#!/bin/sh\n");
    await chmod(notExecutable, 0o644);
    await expect(findChromium({ [CHROMIUM_ENV]: notExecutable })).rejects.toThrow(/not an executable file/);
    await expect(findChromium({ [CHROMIUM_ENV]: dir })).rejects.toThrow(/not an executable file/);
  });

  it(`takes ${CHROMIUM_ENV} as given when it is set`, async () => {
    const standIn = join(dir, "chromium");
    await writeFile(standIn, "#!/bin/sh\n");
    await chmod(standIn, 0o755);
    expect(await findChromium({ [CHROMIUM_ENV]: standIn })).toEqual({ path: standIn, source: CHROMIUM_ENV });
  });

  it("uses the npm package's Chromium by default, and it starts", async () => {
    const unset = { [CHROMIUM_ENV]: "" }; // empty counts as unset, whatever this run's environment says
    const found = await findChromium(unset);
    expect(found.source).toMatch(/^@sparticuz\/chromium \d+\./);
    const browser = await launchChromium({}, unset);
    try {
      expect(browser.version().split(".")[0]).toBe(found.source.split(" ")[1]?.split(".")[0]); // 153.x in 153.0.0
      const page = await browser.newPage();
      await page.setContent("<p>ok</p>");
      expect(await page.textContent("p")).toBe("ok");
    } finally {
      await browser.close();
    }
  });
});
