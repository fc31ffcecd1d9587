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
});
