/** Encoders that take a 1-100 quality. */
export type LossyFormat = "avif" | "webp" | "jpeg";

/**
 * Chosen for about equal SSIM (~0.98 on a 4K photo-like JPEG shrunk to 1280 px, see bench/micro/transform.bench.ts):
 * WebP 80 ≈ mozjpeg 80 ≈ AVIF 60 at effort 0, where AVIF is still ~20% smaller than WebP.
 */
export const DEFAULT_QUALITY: Readonly<Record<LossyFormat, number>> = { avif: 60, webp: 80, jpeg: 80 };
