import { within } from "@testing-library/react";
import { expect } from "vitest";

/** Roles whose name may come from their content: for them the visible text must be part of the name (WCAG 2.5.3). */
const NAMED_FROM_CONTENT = ["button", "link", "checkbox", "radio", "tab", "menuitem", "option", "switch"] as const;

const squash = (text: string): string => text.replace(/\s+/g, "").toLowerCase();

/**
 * Checks WCAG 2.5.3 "label in name" (Lighthouse: "visible labels do not match accessible names") for every control
 * in `container`: its accessible name, as assistive technology computes it, contains its visible text. Returns how
 * many controls it checked, so a test can make sure it looked at something.
 */
export function expectLabelsInNames(container: HTMLElement): number {
  let checked = 0;
  for (const role of NAMED_FROM_CONTENT) {
    const names = new Map<Element, string>();
    within(container).queryAllByRole(role, {
      name: (name, element) => {
        if (element) names.set(element, name);
        return true;
      },
    });
    for (const [element, name] of names) {
      const visible = element.textContent ?? "";
      if (squash(visible) === "") continue; // an icon or a control labelled from outside: nothing visible inside
      expect(squash(name), `${role} "${visible.trim()}" is named "${name}"`).toContain(squash(visible));
      checked += 1;
    }
  }
  return checked;
}
