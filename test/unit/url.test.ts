import { describe, expect, it } from "vitest";
import { imageQuery, imageUrl, OPTION_KEYS, signImageUrl, signSrcSet, srcSet } from "imagika/url";
import { signImageUrl as serverSignImageUrl } from "../../src/http/signature.ts";
import { OPTION_KEYS as SERVER_OPTION_KEYS } from "../../src/transform/options.ts";

const KEY = "unit-test-key";

// The values of fit, f, gravity and flip need no such check: the proxy's parser imports imagika/url's lists.
describe("imagika/url: the vocabulary", () => {
  it("lists the proxy's options in the order of its option table", () => {
    expect(OPTION_KEYS).toEqual(SERVER_OPTION_KEYS);
  });
});

describe("imageUrl", () => {
  it("asks for the original bytes when given no options", () => {
    expect(imageUrl("photo.jpg")).toBe("/img/photo.jpg");
    expect(imageUrl("/photo.jpg", {})).toBe("/img/photo.jpg");
  });

  it("writes every option in the table's order, whatever order they are given in", () => {
    const url = imageUrl("a.jpg", {
      dl: true,
      p: "thumb",
      sharpen: 1.5,
      blur: 2,
      bg: "#FFF",
      flip: "hv",
      rot: 90,
      crop: { left: 10, top: 20, width: 300.4, height: 200 },
      fp: { x: 0.25, y: 2 / 3 },
      enlarge: true,
      f: "webp",
      q: 80,
      fit: "cover",
      dpr: 2,
      h: 300,
      w: 400,
    });
    expect(url).toBe(
      "/img/a.jpg?w=400&h=300&dpr=2&fit=cover&q=80&f=webp&enlarge=1&fp=0.25,0.6667&crop=10,20,300,200" +
        "&rot=90&flip=hv&bg=fff&blur=2&sharpen=1.5&p=thumb&dl=1",
    );
  });

  it("percent-encodes each path segment as the proxy decodes it, keeping the slashes", () => {
    expect(imageUrl("albums/summer 2024/ä#1?.jpg", { w: 10 })).toBe("/img/albums/summer%202024/%C3%A4%231%3F.jpg?w=10");
  });

  it("leaves out what the proxy would do anyway: dpr 1, rot 0, false flags, undefined and null", () => {
    expect(imageUrl("a.jpg", { w: 399.6, dpr: 1, rot: 0, enlarge: false, dl: false, q: undefined, h: null })).toBe(
      "/img/a.jpg?w=400",
    );
    expect(imageUrl("a.jpg", { dpr: 1.33333, w: "auto" })).toBe("/img/a.jpg?w=auto&dpr=1.333");
  });

  it("builds remote-mode URLs for absolute sources and prefixes an origin when given one", () => {
    expect(imageUrl("https://example.com/a b.jpg?x=1", { w: 200 })).toBe(
      "/img?url=https%3A%2F%2Fexample.com%2Fa%20b.jpg%3Fx%3D1&w=200",
    );
    expect(imageUrl("a.jpg", { w: 200 }, { base: "https://img.example.com/" })).toBe(
      "https://img.example.com/img/a.jpg?w=200",
    );
    expect(() => imageUrl("a.jpg", {}, { base: "https://img.example.com/images" })).toThrow(/base must be an origin/);
  });

  it("refuses what the proxy would always refuse, naming the option", () => {
    expect(() => imageUrl("a.jpg", { q: 0 })).toThrow(/option q: expected a number 1-100, got 0/);
    expect(() => imageUrl("a.jpg", { w: Number.NaN })).toThrow(/option w/);
    expect(() => imageUrl("a.jpg", { fp: { x: 1.2, y: 0 } })).toThrow(/option fp/);
    expect(() => imageUrl("a.jpg", { fp: { x: 0.5, y: 0.5 }, gravity: "top" })).toThrow(/fp or gravity/);
    expect(() => imageUrl("a.jpg", { bg: "white" })).toThrow(/option bg/);
    expect(() => imageUrl("a.jpg", { blur: 0.1 })).toThrow(/option blur/);
    expect(() => imageUrl("a.jpg", { p: "no spaces" })).toThrow(/option p/);
    // @ts-expect-error: the types refuse unknown options too; the JavaScript says which ones exist
    expect(() => imageUrl("a.jpg", { width: 100 })).toThrow(/unknown option "width"/);
    expect(() => imageUrl("a/../b.jpg")).toThrow(/segment/);
  });
});

describe("imageQuery", () => {
  it("is the query string alone", () => {
    expect(imageQuery({ f: "thumbhash", w: 100 })).toBe("w=100&f=thumbhash");
    expect(imageQuery()).toBe("");
  });
});

describe("srcSet", () => {
  it("lists one candidate per width, sorted, with the same options", () => {
    expect(srcSet("p/x.jpg", [640, 320, 320], { f: "auto" })).toBe(
      "/img/p/x.jpg?w=320&f=auto 320w, /img/p/x.jpg?w=640&f=auto 640w",
    );
  });

  it("keeps the aspect ratio that w and h give", () => {
    expect(srcSet("x.jpg", [160, 320], { w: 400, h: 300, fit: "cover" })).toBe(
      "/img/x.jpg?w=160&h=120&fit=cover 160w, /img/x.jpg?w=320&h=240&fit=cover 320w",
    );
  });

  it("refuses dpr and h without w", () => {
    expect(() => srcSet("x.jpg", [160], { dpr: 2 })).toThrow(/dpr/);
    expect(() => srcSet("x.jpg", [160], { h: 100 })).toThrow(/needs w with h/);
    expect(() => srcSet("x.jpg", [])).toThrow(/at least one width/);
  });
});

describe("signImageUrl", () => {
  it("signs exactly as the proxy's own signer does, for paths, odd characters and remote sources", async () => {
    for (const url of [
      "/img/photo.jpg?w=800&f=auto",
      "/img/photo.jpg",
      imageUrl("albums/a b/ä+1.jpg", { fp: { x: 0.5, y: 0.25 }, crop: { left: 1, top: 2, width: 3, height: 4 } }),
      imageUrl("https://example.com/a.jpg?x=1&y=2", { w: 100, q: 50 }),
    ]) {
      expect(await signImageUrl(url, KEY)).toBe(serverSignImageUrl(url, KEY).replaceAll("%2C", ","));
    }
  });

  it("adds exp from a Date or unix seconds, replaces an earlier signature, and keeps an origin", async () => {
    const at = 1_900_000_000;
    const expected = serverSignImageUrl("/img/a.jpg?w=10", KEY, at);
    expect(await signImageUrl("/img/a.jpg?w=10", KEY, { expiresAt: at })).toBe(expected);
    expect(await signImageUrl("/img/a.jpg?w=10&s=old&exp=1", KEY, { expiresAt: new Date(at * 1000) })).toBe(expected);
    expect(await signImageUrl("https://img.example.com/img/a.jpg?w=10", KEY, { expiresAt: at })).toBe(
      `https://img.example.com${expected}`,
    );
  });

  it("refuses URLs that are not the proxy's image URLs", async () => {
    await expect(signImageUrl("/api/images", KEY)).rejects.toThrow(/expected \/img/);
    await expect(signImageUrl("/img/a.jpg", "")).rejects.toThrow(/signing key/);
  });

  it("signs every candidate of a srcset", async () => {
    const set = srcSet("a.jpg", [160, 320], { f: "auto" });
    const signed = await signSrcSet(set, KEY);
    expect(signed).toBe(
      `${serverSignImageUrl("/img/a.jpg?w=160&f=auto", KEY)} 160w, ${serverSignImageUrl("/img/a.jpg?w=320&f=auto", KEY)} 320w`,
    );
  });
});
