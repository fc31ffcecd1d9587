import type { Page } from "playwright-core";

/** A point as fractions (0-1) of the playground's source picker. */
export interface PickerPoint {
  readonly x: number;
  readonly y: number;
}

/** The source picker's box on the page (for clicks at a fraction of it). */
export type PickerBox = NonNullable<Awaited<ReturnType<ReturnType<Page["getByTestId"]>["boundingBox"]>>>;

/**
 * Drags a crop on the viewer's source picker (`data-testid="source-picker"`) from `from` to `to` with the mouse,
 * through their midpoint, as a user would; returns the picker's box. Used by the end-to-end test and by
 * scripts/screenshots.ts.
 */
export async function dragCropOnPicker(page: Page, from: PickerPoint, to: PickerPoint, steps = 4): Promise<PickerBox> {
  const box = await page.getByTestId("source-picker").boundingBox();
  if (!box) throw new Error("the source picker has no box");
  const at = (point: PickerPoint) => [box.x + box.width * point.x, box.y + box.height * point.y] as const;
  await page.mouse.move(...at(from));
  await page.mouse.down();
  await page.mouse.move(...at({ x: (from.x + to.x) / 2, y: (from.y + to.y) / 2 }), { steps });
  await page.mouse.move(...at(to), { steps });
  await page.mouse.up();
  return box;
}
