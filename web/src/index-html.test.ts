// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import html from "../index.html?raw";

describe("index.html", () => {
  const page = new DOMParser().parseFromString(html, "text/html");

  it("describes the page for search results and link previews (a meta description of 50-160 characters)", () => {
    const description = page.querySelector('meta[name="description"]')?.getAttribute("content") ?? "";
    expect(description.length).toBeGreaterThanOrEqual(50);
    expect(description.length).toBeLessThanOrEqual(160);
  });

  it("has a language, a title and a viewport", () => {
    expect(page.documentElement.lang).toBe("en");
    expect(page.title).toBe("Imagika");
    expect(page.querySelector('meta[name="viewport"]')?.getAttribute("content")).toContain("width=device-width");
  });
});
