// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { OriginalImage } from "../lib/api.ts";
import { expectLabelsInNames } from "../test-support/label-in-name.ts";
import { EAGER_TILES, Gallery } from "./Gallery.tsx";

afterEach(cleanup);

const images: OriginalImage[] = [
  { path: "landscape-01.jpg", width: 3840, height: 2160, bytes: 4_123_456, format: "jpeg" },
  { path: "albums/tall one.png", width: 600, height: 1200, bytes: 900_000, format: "png" },
];

describe("Gallery", () => {
  it("renders one responsive proxy image per original, keeping its aspect ratio", () => {
    const { container } = render(
      <Gallery state={{ kind: "ready", images }} onOpen={() => undefined} onRetry={() => undefined} />,
    );
    const [first, second] = container.querySelectorAll("img");
    expect(first?.getAttribute("src")).toBe("/img/landscape-01.jpg?w=480&f=auto");
    expect(first?.getAttribute("srcset")).toContain("/img/landscape-01.jpg?w=1920&f=auto 1920w");
    expect(first?.getAttribute("sizes")).toBeTruthy();
    expect(first?.parentElement?.style.aspectRatio).toBe("3840 / 2160");
    expect(second?.getAttribute("src")).toBe("/img/albums/tall%20one.png?w=480&f=auto");
    expect(second?.getAttribute("srcset")).toBe(
      "/img/albums/tall%20one.png?w=160&f=auto 160w, /img/albums/tall%20one.png?w=320&f=auto 320w, " +
        "/img/albums/tall%20one.png?w=480&f=auto 480w, /img/albums/tall%20one.png?w=600&f=auto 600w",
    );
  });

  it("loads the first row eagerly, the first tile at high priority (the LCP image), and the rest lazily", () => {
    const many = Array.from({ length: EAGER_TILES + 3 }, (_, i) => ({ ...images[0]!, path: `p${i}.jpg` }));
    const { container } = render(
      <Gallery state={{ kind: "ready", images: many }} onOpen={() => undefined} onRetry={() => undefined} />,
    );
    const tiles = [...container.querySelectorAll("img")];
    const loading = tiles.map((img) => img.getAttribute("loading"));
    expect(loading).toEqual([...Array<string>(EAGER_TILES).fill("eager"), "lazy", "lazy", "lazy"]);
    expect(tiles.map((img) => img.getAttribute("fetchpriority"))).toEqual([
      "high",
      ...Array<string>(EAGER_TILES + 2).fill("auto"),
    ]);
    expect(tiles[EAGER_TILES]?.getAttribute("decoding")).toBe("async");
  });

  it("opens the viewer from a tile button named by the caption it shows", () => {
    const onOpen = vi.fn();
    const { container } = render(
      <Gallery state={{ kind: "ready", images }} onOpen={onOpen} onRetry={() => undefined} />,
    );
    fireEvent.click(screen.getByRole("button", { name: /^landscape-01\.jpg\s*3840 × 2160 · 4\.1 MB$/ }));
    expect(onOpen).toHaveBeenCalledWith(images[0]);
    expect(expectLabelsInNames(container)).toBe(images.length);
  });

  it("shows the listing error with a retry button instead of an empty grid", () => {
    const onRetry = vi.fn();
    render(
      <Gallery
        state={{
          kind: "error",
          error: {
            status: 502,
            code: "ORIGIN_FAILED",
            title: "Origin down",
            detail: "connect ECONNREFUSED",
            retryAfterSeconds: undefined,
          },
        }}
        onOpen={() => undefined}
        onRetry={onRetry}
      />,
    );
    expect(screen.getByRole("alert").textContent).toContain("Could not list originals: Origin down");
    expect(screen.getByRole("alert").textContent).toContain("HTTP 502 · ORIGIN_FAILED");
    fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(onRetry).toHaveBeenCalledOnce();
  });

  it("has distinct loading and empty states", () => {
    const { rerender } = render(
      <Gallery state={{ kind: "loading" }} onOpen={() => undefined} onRetry={() => undefined} />,
    );
    expect(screen.getByLabelText("Loading originals")).toBeTruthy();
    rerender(<Gallery state={{ kind: "ready", images: [] }} onOpen={() => undefined} onRetry={() => undefined} />);
    expect(screen.getByText("No originals yet")).toBeTruthy();
  });
});
