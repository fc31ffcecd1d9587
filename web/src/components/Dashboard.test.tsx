// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { parseStats } from "../lib/api.ts";
import { StatsView } from "./Dashboard.tsx";

afterEach(cleanup);

describe("StatsView", () => {
  it("shows what the proxy turned away: rate-limited, shed, refused requests and connections over the cap", () => {
    const stats = parseStats({
      rateLimited: 12,
      shed: 3,
      refusedRequests: 4,
      rejectedConnections: 5,
      rateLimit: { perSecond: 50, burst: 100 },
    });
    render(<StatsView stats={stats} />);
    const card = screen.getByTestId("stat-rate-limited").parentElement!; // the value and its detail line
    expect(screen.getByTestId("stat-rate-limited").textContent).toBe("12");
    expect(card.textContent).toContain("50/s, burst 100");
    expect(card.textContent).toContain("3 shed (503)");
    expect(card.textContent).toContain("4 malformed or oversized refused");
    expect(card.textContent).toContain("5 connections over the cap");
  });

  it("leaves out the counters that are still 0", () => {
    render(<StatsView stats={parseStats({ rateLimited: 1, rateLimit: { perSecond: 50, burst: 100 } })} />);
    const text = screen.getByTestId("stat-rate-limited").parentElement!.textContent ?? "";
    expect(text).toContain("50/s, burst 100");
    expect(text).not.toMatch(/refused|over the cap|shed/);
  });

  it("shows resident memory against the limit, what fills it and what it turned away", () => {
    const MB = 1_000_000;
    const stats = parseStats({
      memory: {
        limitBytes: 512 * MB,
        rssBytes: 256 * MB,
        cacheBytes: 100 * MB,
        reservedBytes: 40 * MB,
        overheadBytes: 116 * MB,
        waiting: 2,
        shed: 7,
        tooLarge: 1,
      },
    });
    render(<StatsView stats={stats} />);
    const meter = screen.getByTestId("memory-meter");
    expect(meter.textContent).toContain("256 MB / 512 MB limit");
    expect(meter.textContent).toContain("cache 100 MB · in flight 40 MB");
    expect(meter.textContent).toContain("7 shed (503) · 1 too large (413) · 2 waiting");
    expect(meter.querySelector('[role="meter"]')?.getAttribute("aria-valuenow")).toBe("50");
  });

  it("names every meter after the label shown beside it", () => {
    const MB = 1_000_000;
    render(<StatsView stats={parseStats({ memory: { limitBytes: 512 * MB, rssBytes: 256 * MB } })} />);
    const labels = ["Memory (RSS)", "Cache", "Variants", "Originals", "Bytes served"];
    const shown = screen
      .getAllByRole("meter")
      .map((meter) => document.getElementById(meter.getAttribute("aria-labelledby") ?? "")?.textContent);
    expect(shown).toEqual(labels);
    for (const name of labels) expect(screen.getByRole("meter", { name })).toBeTruthy(); // the name as computed
  });

  it("leaves the memory meter out for a proxy that reports no limit", () => {
    render(<StatsView stats={parseStats({})} />);
    expect(screen.queryByTestId("memory-meter")).toBeNull();
  });

  it("shows revalidations (304 / 200), originals that changed, stale answers and purged entries", () => {
    const stats = parseStats({
      freshness: {
        revalidations: { notModified: 40, modified: 3, failed: 2 },
        originalsChanged: 1,
        staleServed: { whileRevalidating: 12, ifError: 5 },
      },
      purgedEntries: 9,
    });
    render(<StatsView stats={stats} />);
    expect(screen.getByTestId("stat-revalidated").textContent).toBe("43");
    const text = screen.getByTestId("stat-revalidated").parentElement!.textContent ?? "";
    expect(text).toContain("40 not modified (304) · 3 refetched (200)");
    expect(text).toContain("1 changed at the origin · 2 failed");
    expect(text).toContain("stale served: 12 while revalidating · 5 on origin errors");
    expect(text).toContain("9 entries purged");
  });
});
