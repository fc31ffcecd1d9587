// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { summarizeBurst, type BurstOutcome } from "../lib/burst.ts";
import { BurstSummary } from "./BurstSummary.tsx";

afterEach(cleanup);

const outcome = (kind: BurstOutcome["kind"], status: number, extra: Partial<BurstOutcome> = {}): BurstOutcome => ({
  kind,
  status,
  isHit: false,
  durationMs: 5,
  retryAfterSeconds: undefined,
  ...extra,
});

describe("BurstSummary", () => {
  it("shows served, coalesced, rate-limited (with Retry-After) and other errors", () => {
    const summary = summarizeBurst(
      [
        outcome("served", 200),
        outcome("coalesced", 200),
        outcome("coalesced", 200),
        outcome("rateLimited", 429, { retryAfterSeconds: 2 }),
        outcome("rateLimited", 429, { retryAfterSeconds: 1 }),
        outcome("overloaded", 503),
        outcome("failed", 504),
        outcome("network", 0),
      ],
      1500,
    );
    render(<BurstSummary summary={summary} />);
    expect(screen.getByTestId("burst-ok").textContent).toBe("3");
    expect(screen.getByTestId("burst-coalesced").textContent).toBe("2");
    expect(screen.getByTestId("burst-rate-limited").textContent).toBe("2 Retry-After 2 s");
    expect(screen.getByTestId("burst-overloaded").textContent).toBe("1");
    expect(screen.getByTestId("burst-other").textContent).toBe("504 × 1, no response × 1");
    expect(screen.getByText(/8 requests in 1.50 s/)).toBeTruthy();
  });
});
