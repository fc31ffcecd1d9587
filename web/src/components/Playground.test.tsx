// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { OriginalImage } from "../lib/api.ts";
import { expectLabelsInNames } from "../test-support/label-in-name.ts";
import { Viewer } from "./Viewer.tsx";

afterEach(cleanup);

/**
 * The viewer's playground in jsdom: the URL it shows as the controls change. (jsdom has no layout: the stage keeps
 * its 960x640 fallback and the source picker is given a box; fetching the variant fails here, which the stage shows.)
 */
const image: OriginalImage = { path: "p/landscape.jpg", width: 3840, height: 2160, bytes: 4_000_000, format: "jpeg" };
/** Where the picker sits on the "screen": 384 x 216 CSS px at (100, 50), a tenth of the original. */
const PICKER = { left: 100, top: 50, width: 384, height: 216 };

function renderViewer() {
  const view = render(
    <Viewer image={image} accept="image/avif,image/webp,*/*" adminToken="" onClose={() => undefined} />,
  );
  const picker = screen.getByTestId("source-picker");
  picker.getBoundingClientRect = () => DOMRect.fromRect({ x: PICKER.left, y: PICKER.top, ...PICKER });
  return { ...view, picker, url: () => screen.getByTestId("viewer-url").textContent };
}

function choose(label: string, value: string) {
  fireEvent.change(screen.getByLabelText(label, { selector: "select" }), { target: { value } });
}

/** A pointer gesture on the picker, in its own pixels. */
function gesture(picker: HTMLElement, from: [number, number], to: [number, number]) {
  const at = ([x, y]: [number, number]) => ({ clientX: PICKER.left + x, clientY: PICKER.top + y, pointerId: 1 });
  fireEvent.pointerDown(picker, { ...at(from), button: 0 });
  fireEvent.pointerMove(picker, at([(from[0] + to[0]) / 2, (from[1] + to[1]) / 2]));
  fireEvent.pointerMove(picker, at(to));
  fireEvent.pointerUp(picker, at(to));
}

describe("Viewer playground", () => {
  it("builds the URL from the controls", () => {
    const { url } = renderViewer();
    expect(url()).toBe("/img/p/landscape.jpg?w=960&f=auto");
    choose("Width", "640");
    choose("Aspect", "1:1");
    choose("Gravity", "attention");
    choose("Rotate", "90");
    choose("Flip", "hv");
    choose("Format", "webp");
    choose("Quality", "60");
    fireEvent.change(screen.getByLabelText("Blur"), { target: { value: "2.5" } });
    fireEvent.change(screen.getByLabelText("Sharpen"), { target: { value: "1" } });
    expect(url()).toBe(
      "/img/p/landscape.jpg?w=640&h=640&fit=cover&q=60&f=webp&gravity=attention&rot=90&flip=hv&blur=2.5&sharpen=1",
    );
    choose("Fit", "contain");
    fireEvent.click(screen.getByRole("checkbox", { name: "Set a background" }));
    fireEvent.input(screen.getByLabelText("Background colour"), { target: { value: "#ff8800" } });
    expect(url()).toBe(
      "/img/p/landscape.jpg?w=640&h=640&fit=contain&q=60&f=webp&rot=90&flip=hv&bg=ff8800&blur=2.5&sharpen=1",
    );
    choose("Format", "original");
    expect(url()).toBe("/img/p/landscape.jpg");
    fireEvent.click(screen.getByRole("button", { name: "Reset options" }));
    expect(url()).toBe("/img/p/landscape.jpg?w=960&f=auto");
  });

  it("sets the focal point where the source is clicked, and it replaces gravity in a cover crop", () => {
    const { picker, url } = renderViewer();
    choose("Aspect", "1:1");
    choose("Gravity", "entropy");
    gesture(picker, [96, 162], [97, 163]); // moved 1 px: a click
    expect(screen.getByTestId("picked-focal-point").textContent).toBe("0.2526, 0.7546");
    expect(url()).toBe("/img/p/landscape.jpg?w=640&h=640&fit=cover&f=auto&fp=0.2526,0.7546");
    expect(screen.getByTestId("picker-focus").style.left).toBe("25.26%");
    fireEvent.keyDown(picker, { key: "ArrowRight" });
    expect(url()).toContain("&fp=0.3026,0.7546");
    fireEvent.click(screen.getByRole("button", { name: "Clear focal point" }));
    expect(url()).toBe("/img/p/landscape.jpg?w=640&h=640&fit=cover&f=auto");
  });

  it("crops the original to the rectangle dragged on the source, in the original's pixels", () => {
    const { picker, url } = renderViewer();
    gesture(picker, [288, 162], [96, 54]); // from the lower right up to the upper left: x 25-75%, y 25-75%
    expect(screen.getByTestId("picked-crop").textContent).toBe("960, 540 · 1920 × 1080");
    expect(url()).toBe("/img/p/landscape.jpg?w=960&f=auto&crop=960,540,1920,1080");
    const box = screen.getByTestId("picker-crop").style;
    expect([box.left, box.top, box.width, box.height]).toEqual(["25%", "25%", "50%", "50%"]);
    expect(screen.queryByTestId("picked-focal-point")?.textContent).toBe("none"); // a drag is not a click
    fireEvent.click(screen.getByRole("button", { name: "Clear crop" }));
    expect(url()).toBe("/img/p/landscape.jpg?w=960&f=auto");
  });

  it("names every control by what it shows", () => {
    const { container } = renderViewer();
    gesture(screen.getByTestId("source-picker"), [10, 10], [100, 100]);
    expect(expectLabelsInNames(container)).toBeGreaterThanOrEqual(5); // Close, Reset, Clear crop, Fetch, Purge
    expect(
      within(container)
        .getByRole("button", { name: /^Close\s*Esc$/ })
        .getAttribute("aria-keyshortcuts"),
    ).toBe("Escape");
  });
});
