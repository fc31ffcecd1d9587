import { DEFAULT_QUALITY } from "../quality.ts";
import type { TransformStep } from "./step.ts";

/** JPEG has no alpha: transparent areas become white (or bg), as on a typical page, rather than libvips' black. */
const JPEG_BACKGROUND = "#ffffff";

/** Encodes in plan.format with the per-format defaults in quality.ts. */
export const format: TransformStep = {
  name: "format",
  apply(image, plan) {
    switch (plan.format) {
      case "avif":
        // Effort from --avif-effort: effort 4 is ~10x slower than 2 on 4K input. 4:2:0 like WebP and
        // JPEG: sharp's AVIF default of 4:4:4 costs bytes the other formats do not spend.
        return image.avif({
          quality: plan.quality ?? DEFAULT_QUALITY.avif,
          effort: plan.avifEffort,
          chromaSubsampling: "4:2:0",
        });
      case "webp":
        return image.webp({ quality: plan.quality ?? DEFAULT_QUALITY.webp });
      case "jpeg":
        // mozjpeg: trellis quantisation + progressive scans, ~10% smaller at the same quality for ~20% more CPU.
        // flatten is a no-op without alpha; with bg it also covers translucent contain padding on an opaque original.
        return (
          plan.hasAlpha || plan.background !== undefined
            ? image.flatten({ background: plan.background ?? JPEG_BACKGROUND })
            : image
        ).jpeg({
          quality: plan.quality ?? DEFAULT_QUALITY.jpeg,
          mozjpeg: true,
        });
      case "png":
        // Lossless by default; q turns on palette quantisation (pngquant-style), the only lossy knob PNG has.
        return plan.quality === undefined
          ? image.png({ compressionLevel: 9 })
          : image.png({ palette: true, quality: plan.quality });
      case "gif":
        return image.gif();
      case "thumbhash":
        // 8-bit sRGB RGBA, whatever the original (16-bit PNG, CMYK, grey): what rgbaToThumbHash reads.
        return image.toColourspace("srgb").ensureAlpha().raw({ depth: "uchar" });
    }
  },
};
