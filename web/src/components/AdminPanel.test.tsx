// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { describeAdminResponse, purgeUrlOf, type AdminResult, type PurgeTarget } from "../lib/api.ts";
import { AdminPanel } from "./AdminPanel.tsx";

afterEach(cleanup);

/** Stands in for the proxy's DELETE /api/cache: records what was asked and answers as the proxy would. */
function proxyAnswering(status: number, body: string) {
  const asked: { token: string; url: string }[] = [];
  const purge = (token: string, target: PurgeTarget): Promise<AdminResult> => {
    asked.push({ token, url: purgeUrlOf(target) });
    return Promise.resolve(describeAdminResponse(status, body, target));
  };
  return { asked, purge };
}

describe("AdminPanel", () => {
  it("purges every path starting with the prefix typed, with the token, and shows how many entries went", async () => {
    const proxy = proxyAnswering(200, JSON.stringify({ prefix: "albums/2024 summer/", purged: 7 }));
    render(<AdminPanel token="s3cret" onTokenChange={() => undefined} purge={proxy.purge} />);
    const button = screen.getByRole("button", { name: "Purge prefix" });
    expect(button).toHaveProperty("disabled", true); // an empty prefix names nothing
    fireEvent.change(screen.getByLabelText("Path prefix"), { target: { value: "albums/2024 summer/" } });
    fireEvent.click(button);
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("7 entries"));
    expect(proxy.asked).toEqual([{ token: "s3cret", url: "/api/cache?prefix=albums%2F2024+summer%2F" }]);
    expect(screen.getByRole("status").textContent).toBe(
      "Purged every path starting with “albums/2024 summer/” (7 entries).",
    );
  });

  it("still purges everything from its own button", async () => {
    const proxy = proxyAnswering(200, JSON.stringify({ purged: 42 }));
    render(<AdminPanel token="t" onTokenChange={() => undefined} purge={proxy.purge} />);
    fireEvent.click(screen.getByRole("button", { name: "Purge everything" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("Purged the whole cache (42 entries)."));
    expect(proxy.asked).toEqual([{ token: "t", url: "/api/cache" }]);
  });

  it("says what a refused prefix purge means", async () => {
    const proxy = proxyAnswering(401, JSON.stringify({ error: "UNAUTHORIZED", message: "bearer token required" }));
    render(<AdminPanel token="" onTokenChange={() => undefined} purge={proxy.purge} />);
    fireEvent.change(screen.getByLabelText("Path prefix"), { target: { value: "a" } });
    fireEvent.submit(screen.getByLabelText("Path prefix").closest("form")!);
    await waitFor(() =>
      expect(screen.getByRole("status").textContent).toBe("401 Unauthorized: enter the admin token."),
    );
  });
});
