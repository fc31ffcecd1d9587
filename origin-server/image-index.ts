import { createHash } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { isImageFileName } from "./image-files.ts";

/** One image in /index.json; width and height as displayed, i.e. after the EXIF orientation. */
export interface IndexedImage {
  readonly path: string;
  readonly width: number;
  readonly height: number;
  readonly bytes: number;
  readonly format: string;
  /** Present only when the file has an EXIF orientation other than 1. */
  readonly orientation?: number;
}

/** The serialised index, ready to send. */
export interface IndexDocument {
  readonly body: Buffer;
  /** Strong: a hash of the body. */
  readonly etag: string;
}

interface ScannedFile {
  readonly path: string;
  readonly bytes: number;
  readonly mtimeMs: number;
}

interface Known {
  readonly bytes: number;
  readonly mtimeMs: number;
  /** undefined when sharp could not read the file: it is left out of the index until it changes. */
  readonly image: IndexedImage | undefined;
}

/**
 * The origin's /index.json. Each call re-scans names, sizes and mtimes (a readdir and a stat per file: about a
 * millisecond for a few hundred files) and only asks sharp for the header of files that are new or changed, so adding
 * a file shows up on the next request without decoding the library again. Concurrent calls share one scan.
 * Hidden entries and symlinks are skipped, so the index only lists files that are plainly inside the root.
 */
export class ImageIndex {
  readonly #root: string;
  readonly #known = new Map<string, Known>();
  #signature = "";
  #document: IndexDocument | undefined;
  #pending: Promise<IndexDocument> | undefined;

  constructor(root: string) {
    this.#root = root;
  }

  get(): Promise<IndexDocument> {
    this.#pending ??= this.#build().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #build(): Promise<IndexDocument> {
    const files = await scanImages(this.#root, "");
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const signature = files.map((file) => `${file.path}\0${file.bytes}\0${file.mtimeMs}`).join("\n");
    if (this.#document !== undefined && signature === this.#signature) return this.#document;

    const images: IndexedImage[] = [];
    const seen = new Set<string>();
    for (const file of files) {
      seen.add(file.path);
      let known = this.#known.get(file.path);
      if (known === undefined || known.bytes !== file.bytes || known.mtimeMs !== file.mtimeMs) {
        known = { bytes: file.bytes, mtimeMs: file.mtimeMs, image: await describeImage(this.#root, file) };
        this.#known.set(file.path, known);
      }
      if (known.image !== undefined) images.push(known.image);
    }
    for (const path of this.#known.keys()) if (!seen.has(path)) this.#known.delete(path);

    const body = Buffer.from(JSON.stringify({ images }));
    this.#document = { body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` };
    this.#signature = signature;
    return this.#document;
  }
}

/** Image files below `dir` (paths relative to the root, "/"-separated); a folder that vanishes mid-scan is empty. */
async function scanImages(root: string, relative: string): Promise<ScannedFile[]> {
  let entries;
  try {
    entries = await readdir(join(root, relative), { withFileTypes: true });
  } catch {
    return [];
  }
  const found: ScannedFile[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) {
      found.push(...(await scanImages(root, path)));
    } else if (entry.isFile() && isImageFileName(entry.name)) {
      try {
        const stats = await stat(join(root, path));
        found.push({ path, bytes: stats.size, mtimeMs: stats.mtimeMs });
      } catch {
        // removed between readdir and stat
      }
    }
  }
  return found;
}

/** Reads only the header: sharp's metadata() does not decode pixels. */
async function describeImage(root: string, file: ScannedFile): Promise<IndexedImage | undefined> {
  try {
    const metadata = await sharp(join(root, file.path)).metadata();
    // libheif reports AVIF as "heif" with AV1 compression.
    const format = metadata.format === "heif" && metadata.compression === "av1" ? "avif" : metadata.format;
    const { width, height } = metadata.autoOrient;
    const image: IndexedImage = { path: file.path, width, height, bytes: file.bytes, format };
    return metadata.orientation !== undefined && metadata.orientation !== 1
      ? { ...image, orientation: metadata.orientation }
      : image;
  } catch {
    return undefined;
  }
}
