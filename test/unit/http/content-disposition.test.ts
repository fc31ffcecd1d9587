import { describe, expect, it } from "vitest";
import { contentDisposition, MAX_FILENAME_LENGTH } from "../../../src/http/content-disposition.ts";

/** What a browser would save: filename* when present (RFC 6266 §4.3), else filename. */
function savedName(header: string): string {
  const extended = /filename\*=UTF-8''([^;]+)/.exec(header);
  if (extended?.[1] !== undefined) return decodeURIComponent(extended[1]);
  return /filename="([^"]*)"/.exec(header)?.[1] ?? "";
}

describe("contentDisposition", () => {
  it.each([
    ["photo.jpg", "webp", false, 'inline; filename="photo.webp"'],
    ["photo.jpg", "jpeg", true, 'attachment; filename="photo.jpg"'],
    ["albums/2024/sunset.final.PNG", "avif", false, 'inline; filename="sunset.final.avif"'],
    ["noext", "png", false, 'inline; filename="noext.png"'],
    ["photo.jpg", "thumbhash", false, 'inline; filename="photo.txt"'],
    ["scan.tiff", "tiff", false, 'inline; filename="scan.tif"'],
    ["a b(1).jpg", "gif", false, 'inline; filename="a b(1).gif"'],
    ["https://cdn.example.com/img/cat.jpg?x=1#y", "webp", false, 'inline; filename="cat.webp"'],
    ["https://cdn.example.com/img/caf%C3%A9.jpg", "webp", false, "café"],
  ] as const)("%s as %s (download %s): %s", (path, format, isDownload, expected) => {
    const header = contentDisposition(path, format, isDownload);
    if (expected.includes(";")) expect(header).toBe(expected);
    else expect(savedName(header)).toBe(`${expected}.webp`);
  });

  it.each([
    ['say "hi".jpg', 'inline; filename="say _hi_.webp"'],
    ["back\\slash.jpg", 'inline; filename="slash.webp"'],
    ["100%.jpg", 'inline; filename="100_.webp"'],
    ["line\r\nSet-Cookie: x=1.jpg", 'inline; filename="line_Set-Cookie: x=1.webp"'],
    ["tab\there.jpg", 'inline; filename="tab_here.webp"'],
    [".hidden", 'inline; filename="hidden.webp"'],
    ["..", 'inline; filename="image.webp"'],
    ["https://x.example/a/..%2F..%2Fetc%2Fpasswd", 'inline; filename="passwd.webp"'],
    ["https://x.example/a/..%5C..%5Cboot.ini", 'inline; filename="boot.webp"'],
    ["https://x.example/%E0%A4%A", 'inline; filename="_E0_A4_A.webp"'],
    ["https://x.example/", 'inline; filename="image.webp"'],
    ['"; filename="evil.exe', 'inline; filename="_; filename=_evil.webp"'],
    ["\u202Egnp.exe", 'inline; filename="_gnp.webp"'], // a right-to-left override would show "exe.png"
  ])("makes a hostile name harmless: %j", (path, expected) => {
    const header = contentDisposition(path, "webp", false);
    // eslint-disable-next-line no-control-regex -- no control character may reach the header
    expect(header).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(header.replace(/^inline; filename\*?=/, "")).not.toMatch(/\\/);
    expect(header).toBe(expected);
  });

  it("gives a non-ASCII name in filename* (RFC 8187) with an ASCII fallback", () => {
    const header = contentDisposition("fotos/Größe ñ 日本.jpg", "avif", true);
    expect(header).toBe(
      "attachment; filename=\"Gr__e _ __.avif\"; filename*=UTF-8''Gr%C3%B6%C3%9Fe%20%C3%B1%20%E6%97%A5%E6%9C%AC.avif",
    );
    expect(savedName(header)).toBe("Größe ñ 日本.avif");
    expect(header).toMatch(/^[\x20-\x7e]*$/);
    // RFC 8187 attr-char only: ' ( ) * are encoded too (encodeURIComponent leaves them).
    expect(contentDisposition("it's (1)*é.jpg", "png", false)).toContain(
      "filename*=UTF-8''it%27s%20%281%29%2A%C3%A9.png",
    );
  });

  it("cuts long names to MAX_FILENAME_LENGTH characters (astral ones whole)", () => {
    const header = contentDisposition(`${"😀".repeat(300)}.jpg`, "webp", false);
    expect([...savedName(header).replace(/\.webp$/, "")]).toHaveLength(MAX_FILENAME_LENGTH);
    expect(contentDisposition(`${"a".repeat(500)}.jpg`, "webp", false)).toBe(
      `inline; filename="${"a".repeat(MAX_FILENAME_LENGTH)}.webp"`,
    );
  });
});
