// @vitest-environment jsdom
import { cleanup, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { OriginalImage } from "../lib/api.ts";
import { FactsPanel, type DeliveredFacts } from "./FactsPanel.tsx";

afterEach(cleanup);

const original: OriginalImage = {
  path: "landscape-01.jpg",
  width: 3840,
  height: 2160,
  bytes: 4_123_456,
  format: "jpeg",
};

const delivered: DeliveredFacts = {
  bytes: 123_456,
  contentType: "image/avif",
  width: 1920,
  height: 1080,
  cacheStatus: "imagika; fwd=miss; collapsed",
  xCache: null,
  serverTiming: "total;dur=152.9, queue;dur=0.4, origin;dur=31.2, transform;dur=120.5",
  durationMs: 160,
};

describe("FactsPanel", () => {
  it("shows original and delivered bytes and the saving in percent", () => {
    render(<FactsPanel original={original} delivered={delivered} />);
    expect(screen.getByTestId("original-bytes").textContent).toBe("4.1 MB");
    expect(screen.getByTestId("delivered-bytes").textContent).toBe("123 kB");
    expect(screen.getByTestId("saving").textContent).toBe("97.0% smaller");
    expect(screen.getByText(/AVIF · 1920 × 1080/)).toBeTruthy();
    expect(screen.getByText(/3840 × 2160 · JPEG/)).toBeTruthy();
  });

  it("says when the variant is larger than the original", () => {
    render(<FactsPanel original={{ ...original, bytes: 100_000 }} delivered={{ ...delivered, bytes: 150_000 }} />);
    expect(screen.getByTestId("saving").textContent).toBe("50.0% larger");
  });

  it("shows the cache outcome and the Server-Timing phases in request order", () => {
    render(<FactsPanel original={original} delivered={delivered} />);
    expect(screen.getByTestId("cache-status").textContent).toBe("Miss, collapsed");
    const rows = within(screen.getByRole("list", { name: "Server-Timing breakdown" })).getAllByRole("listitem");
    expect(rows.map((row) => row.textContent)).toEqual([
      "queue0.40 ms",
      "origin31.2 ms",
      "transform121 ms",
      "total153 ms",
    ]);
  });

  it("shows placeholders until the variant arrives", () => {
    render(<FactsPanel original={original} delivered={undefined} />);
    expect(screen.getByTestId("delivered-bytes").textContent).toBe("…");
    expect(screen.queryByTestId("saving")).toBeNull();
  });
});

describe("FactsPanel with the original bytes", () => {
  it("says 'same size' and shows a Server-Timing entry without a duration as text", () => {
    render(
      <FactsPanel
        original={original}
        delivered={{
          ...delivered,
          bytes: original.bytes,
          cacheStatus: "imagika; hit",
          serverTiming: 'cache;desc="hit", total;dur=1.63',
        }}
      />,
    );
    expect(screen.getByTestId("saving").textContent).toBe("same size");
    expect(screen.getByTestId("cache-status").textContent).toBe("Hit");
    const rows = within(screen.getByRole("list", { name: "Server-Timing breakdown" })).getAllByRole("listitem");
    expect(rows.map((row) => row.textContent)).toEqual(["cachehit", "total1.6 ms"]);
  });
});
