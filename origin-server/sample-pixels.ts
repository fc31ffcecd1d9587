/**
 * Seeded pixel painters for the sample originals: raw interleaved RGB, 3 bytes per pixel, row-major.
 * Everything is computed here in JS from one PRNG so the same seed gives the same pixels (sharp/libvips noise is
 * unseeded). Smooth structure comes from low-resolution value-noise fields bilinearly upsampled per row; the
 * fine detail that makes a JPEG compress like a photograph comes from per-pixel grain.
 *
 * The `!` after typed-array reads below are inside loops bounded by that array's length (or a grid sized for the
 * loop's cells); noUncheckedIndexedAccess cannot see the bound, and a check per pixel would cost 8 M branches.
 */

/** 32-bit PRNG (mulberry32): one state word, fast, and good enough for pictures. */
export type Random = () => number;

export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Mixes a library seed and an image index into an independent per-image seed (image n does not depend on count). */
export function mixSeed(seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

type Rgb = readonly [number, number, number];

const unit = (random: Random): number => random() / 4_294_967_296;
const between = (random: Random, min: number, max: number): number => min + unit(random) * (max - min);
const pick = <T>(random: Random, items: readonly T[]): T => items[random() % items.length] as T; // modulo keeps it in range
const mix = (a: Rgb, b: Rgb, t: number): Rgb => [
  a[0] + (b[0] - a[0]) * t,
  a[1] + (b[1] - a[1]) * t,
  a[2] + (b[2] - a[2]) * t,
];

/**
 * Fractal value noise at a low resolution (`width` x `height`), values roughly in [0, 1].
 * `cells` is the number of noise cells across the width at the first octave; each octave doubles it and halves the amplitude.
 */
function fractalField(width: number, height: number, cells: number, octaves: number, random: Random): Float32Array {
  const field = new Float32Array(width * height);
  let amplitude = 0.5;
  let total = 0;
  for (let octave = 0; octave < octaves; octave++) {
    const cellsX = cells << octave;
    const cellsY = Math.max(1, Math.ceil((cellsX * height) / width));
    const stride = cellsX + 1;
    const grid = new Float32Array(stride * (cellsY + 1));
    for (let i = 0; i < grid.length; i++) grid[i] = unit(random);
    // Column positions are the same on every row: compute them once per octave.
    const columns = new Int32Array(width);
    const columnWeights = new Float32Array(width);
    for (let x = 0; x < width; x++) {
      const gx = (x / width) * cellsX;
      columns[x] = Math.floor(gx);
      columnWeights[x] = smooth(gx - Math.floor(gx));
    }
    for (let y = 0; y < height; y++) {
      const gy = (y / height) * cellsY;
      const iy = Math.floor(gy);
      const fy = smooth(gy - iy);
      const row0 = iy * stride;
      const row1 = row0 + stride;
      const out = y * width;
      for (let x = 0; x < width; x++) {
        // in range: x < width (the tables' length), column < cellsX and iy < cellsY index inside the grid
        const column = columns[x]!;
        const fx = columnWeights[x]!;
        const a = grid[row0 + column]!;
        const c = grid[row1 + column]!;
        const top = a + (grid[row0 + column + 1]! - a) * fx;
        const bottom = c + (grid[row1 + column + 1]! - c) * fx;
        field[out + x]! += (top + (bottom - top) * fy) * amplitude;
      }
    }
    total += amplitude;
    amplitude /= 2;
  }
  for (let i = 0; i < field.length; i++) field[i]! /= total;
  return field;
}

const SINE_STEPS = 4096;
const SINE_TABLE = Float32Array.from({ length: SINE_STEPS }, (_, i) => Math.sin((i / SINE_STEPS) * 2 * Math.PI));

/** Math.sin costs ~35 ns here, a third of a texture's per-pixel budget; 4096 steps are finer than the grain. */
function fastSine(radians: number): number {
  // `| 0` truncates to an int32 and `&` wraps negatives too; |radians| stays far below 2^31 / 652 in the painters
  return SINE_TABLE[((radians * (SINE_STEPS / (2 * Math.PI))) | 0) & (SINE_STEPS - 1)]!;
}

function smooth(t: number): number {
  return t * t * (3 - 2 * t);
}

/** Reads a low-resolution field at full resolution, one row at a time (bilinear, column weights precomputed). */
class FieldSampler {
  readonly #field: Float32Array;
  readonly #fieldWidth: number;
  readonly #fieldHeight: number;
  readonly #height: number;
  readonly #x0: Int32Array;
  readonly #wx: Float32Array;

  constructor(field: Float32Array, fieldWidth: number, fieldHeight: number, width: number, height: number) {
    this.#field = field;
    this.#fieldWidth = fieldWidth;
    this.#fieldHeight = fieldHeight;
    this.#height = height;
    this.#x0 = new Int32Array(width);
    this.#wx = new Float32Array(width);
    for (let x = 0; x < width; x++) {
      const fx = Math.min(((x + 0.5) / width) * fieldWidth - 0.5, fieldWidth - 1.001);
      const clamped = Math.max(0, fx);
      this.#x0[x] = Math.floor(clamped);
      this.#wx[x] = clamped - Math.floor(clamped);
    }
  }

  /** Fills `out` (length = full width) with row `y`. */
  row(y: number, out: Float32Array): void {
    const fy = Math.max(0, Math.min(((y + 0.5) / this.#height) * this.#fieldHeight - 0.5, this.#fieldHeight - 1.001));
    const y0 = Math.floor(fy);
    const wy = fy - y0;
    const field = this.#field;
    const r0 = y0 * this.#fieldWidth;
    const r1 = r0 + this.#fieldWidth;
    const x0s = this.#x0;
    const wxs = this.#wx;
    for (let x = 0; x < out.length; x++) {
      const i = x0s[x]!; // x < width, the tables' length
      const wx = wxs[x]!;
      const top = field[r0 + i]! + (field[r0 + i + 1]! - field[r0 + i]!) * wx;
      const bottom = field[r1 + i]! + (field[r1 + i + 1]! - field[r1 + i]!) * wx;
      out[x] = top + (bottom - top) * wy;
    }
  }
}

/** A field at 1/`scale` of the picture's resolution, ready to sample per row. */
function createSampler(width: number, height: number, scale: number, cells: number, octaves: number, random: Random) {
  const fieldWidth = Math.ceil(width / scale) + 1;
  const fieldHeight = Math.ceil(height / scale) + 1;
  return new FieldSampler(
    fractalField(fieldWidth, fieldHeight, cells, octaves, random),
    fieldWidth,
    fieldHeight,
    width,
    height,
  );
}

/** 1D fractal noise across the width (hill ridges), values roughly in [0, 1]. */
function fractalLine(width: number, cells: number, octaves: number, random: Random): Float32Array {
  return fractalField(width, 1, cells, octaves, random);
}

/**
 * Adds film grain and writes one pixel. `grain` is the luminance amplitude in 8-bit levels: one 32-bit draw gives a
 * triangular luminance sample (sum of two bytes) and a small chroma shift, like sensor noise.
 */
function createPixelWriter(pixels: Uint8ClampedArray, random: Random, grain: number) {
  const lumaScale = grain / 255;
  const chromaScale = grain / 512;
  return (offset: number, r: number, g: number, b: number): void => {
    const bits = random();
    const luma = ((bits & 0xff) + ((bits >>> 8) & 0xff) - 255) * lumaScale;
    const chroma = (((bits >>> 16) & 0xff) - 128) * chromaScale;
    pixels[offset] = r + luma + chroma;
    pixels[offset + 1] = g + luma;
    pixels[offset + 2] = b + luma - chroma;
  };
}

export type PainterKind = "landscape" | "texture" | "clouds" | "noise" | "gradient";

/** Paints `kind` at `width` x `height` from `seed`; returns raw RGB (3 channels). */
export function paintSample(kind: PainterKind, width: number, height: number, seed: number): Buffer {
  const random = createRandom(seed);
  const pixels = new Uint8ClampedArray(width * height * 3);
  PAINTERS[kind](pixels, width, height, random);
  return Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
}

type Painter = (pixels: Uint8ClampedArray, width: number, height: number, random: Random) => void;

const SKIES: readonly { zenith: Rgb; horizon: Rgb; land: Rgb; far: Rgb }[] = [
  { zenith: [38, 86, 168], horizon: [178, 206, 232], land: [58, 96, 42], far: [112, 134, 160] }, // midday
  { zenith: [58, 52, 118], horizon: [250, 168, 96], land: [52, 58, 40], far: [140, 104, 120] }, // sunset
  { zenith: [24, 60, 120], horizon: [214, 222, 226], land: [92, 104, 58], far: [128, 146, 168] }, // hazy morning
  { zenith: [70, 110, 160], horizon: [236, 214, 170], land: [120, 110, 62], far: [150, 150, 160] }, // dry hills
];

/** Sky gradient with soft clouds, then four hill layers: far ones hazy and blue, near ones darker and textured. */
const paintLandscape: Painter = (pixels, width, height, random) => {
  const sky = pick(random, SKIES);
  const write = createPixelWriter(pixels, random, between(random, 26, 30));
  const clouds = createSampler(width, height, 8, 3, 6, random);
  const detail = createSampler(width, height, 2, 24, 5, random);
  const horizon = height * between(random, 0.42, 0.58);
  const layers = 4;
  const ridges: Int32Array[] = [];
  const colors: Rgb[] = [];
  for (let layer = 0; layer < layers; layer++) {
    const depth = layer / (layers - 1); // 0 far .. 1 near
    const line = fractalLine(width, 2 + layer * 2, 6, random);
    const base = horizon - height * (0.16 - depth * 0.3);
    const amplitude = height * (0.28 - depth * 0.14);
    const ridge = new Int32Array(width);
    for (let x = 0; x < width; x++) ridge[x] = Math.round(base + (line[x]! - 0.5) * 2 * amplitude);
    ridges.push(ridge);
    colors.push(mix(sky.far, mix(sky.land, [26, 34, 22], depth * 0.5), Math.pow(depth, 0.8)));
  }
  const cloudRow = new Float32Array(width);
  const detailRow = new Float32Array(width);
  for (let y = 0; y < height; y++) {
    clouds.row(y, cloudRow);
    detail.row(y, detailRow);
    const t = Math.min(1, Math.max(0, y / horizon));
    const skyColor = mix(sky.zenith, sky.horizon, Math.pow(t, 1.6));
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * 3;
      let layer = -1;
      for (let k = layers - 1; k >= 0; k--) {
        if (y >= ridges[k]![x]!) {
          layer = k;
          break;
        }
      }
      const d = detailRow[x]!;
      if (layer < 0) {
        const cloud = Math.max(0, cloudRow[x]! - 0.52) * 3.2 * (1 - t * 0.6);
        const c = Math.min(1, cloud);
        const wisp = (d - 0.5) * 18 * c;
        write(
          offset,
          skyColor[0] + (246 - skyColor[0]) * c + wisp,
          skyColor[1] + (246 - skyColor[1]) * c + wisp,
          skyColor[2] + (250 - skyColor[2]) * c + wisp,
        );
        continue;
      }
      const color = colors[layer]!;
      const below = (y - ridges[layer]![x]!) / height; // 0 at the ridge
      const depth = layer / (layers - 1);
      const shade = (1 - Math.min(0.45, below * 1.4)) * (0.72 + d * 0.56 * (0.4 + depth));
      const rim = below < 0.004 ? 14 : 0; // light catching the ridge line
      write(offset, color[0] * shade + rim, color[1] * shade + rim, color[2] * shade + rim);
    }
  }
};

const STONES: readonly { dark: Rgb; light: Rgb; vein: Rgb }[] = [
  { dark: [92, 84, 76], light: [214, 206, 196], vein: [60, 54, 50] }, // marble
  { dark: [84, 50, 28], light: [178, 126, 78], vein: [56, 32, 18] }, // wood
  { dark: [58, 62, 66], light: [150, 156, 160], vein: [32, 34, 38] }, // slate
  { dark: [120, 84, 60], light: [222, 178, 130], vein: [90, 58, 40] }, // sandstone
];

/** Marble / wood / slate: turbulent stripes coloured from a palette, over mottled fine detail. */
const paintTexture: Painter = (pixels, width, height, random) => {
  const stone = pick(random, STONES);
  const write = createPixelWriter(pixels, random, between(random, 26, 30));
  const turbulence = createSampler(width, height, 8, 4, 6, random);
  const detail = createSampler(width, height, 2, 40, 5, random);
  const angle = between(random, 0, Math.PI);
  const frequency = between(random, 6, 14) / width;
  const strength = between(random, 6, 12);
  const dx = Math.cos(angle) * frequency * Math.PI * 2;
  const dy = Math.sin(angle) * frequency * Math.PI * 2;
  const turbulenceRow = new Float32Array(width);
  const detailRow = new Float32Array(width);
  const [darkR, darkG, darkB] = stone.dark;
  const [lightR, lightG, lightB] = stone.light;
  const [veinR, veinG, veinB] = stone.vein;
  for (let y = 0; y < height; y++) {
    turbulence.row(y, turbulenceRow);
    detail.row(y, detailRow);
    for (let x = 0; x < width; x++) {
      // x < width: the rows are width long
      const wave = 0.5 + 0.5 * fastSine(x * dx + y * dy + turbulenceRow[x]! * strength);
      const d = detailRow[x]!;
      const t = Math.min(1, Math.max(0, wave * 0.7 + d * 0.6 - 0.15));
      const inverse = 1 - wave;
      const inverse2 = inverse * inverse;
      const inverse4 = inverse2 * inverse2;
      const vein = inverse4 * inverse4;
      const shade = 0.8 + d * 0.4;
      const r = darkR + (lightR - darkR) * t;
      const g = darkG + (lightG - darkG) * t;
      const b = darkB + (lightB - darkB) * t;
      write(
        (y * width + x) * 3,
        (r + (veinR - r) * vein) * shade,
        (g + (veinG - g) * vein) * shade,
        (b + (veinB - b) * vein) * shade,
      );
    }
  }
};

/** A sky full of cumulus: a gradient under a high-contrast cloud field with shaded undersides. */
const paintClouds: Painter = (pixels, width, height, random) => {
  const sky = pick(random, SKIES);
  const write = createPixelWriter(pixels, random, between(random, 26, 30));
  const clouds = createSampler(width, height, 4, 4, 7, random);
  const detail = createSampler(width, height, 2, 32, 4, random);
  const cover = between(random, 0.42, 0.52);
  const cloudRow = new Float32Array(width);
  const detailRow = new Float32Array(width);
  for (let y = 0; y < height; y++) {
    clouds.row(y, cloudRow);
    detail.row(y, detailRow);
    const skyColor = mix(sky.zenith, sky.horizon, Math.pow(y / height, 1.3));
    for (let x = 0; x < width; x++) {
      const d = detailRow[x]!;
      const density = Math.min(1, Math.max(0, (cloudRow[x]! - cover) * 4 + (d - 0.5) * 0.5));
      const light = 250 - density * density * 90 + (d - 0.5) * 30; // thick cloud is grey underneath
      write(
        (y * width + x) * 3,
        skyColor[0] + (light - skyColor[0]) * density,
        skyColor[1] + (light - skyColor[1]) * density,
        skyColor[2] + (light + 6 - skyColor[2]) * density,
      );
    }
  }
};

/** Coloured fractal noise: hue from one field, brightness from another (a good stress for lossy encoders). */
const paintNoise: Painter = (pixels, width, height, random) => {
  const write = createPixelWriter(pixels, random, 36);
  const hue = createSampler(width, height, 8, 3, 6, random);
  const value = createSampler(width, height, 2, 16, 6, random);
  const hueOffset = unit(random) * Math.PI * 2;
  const hueRow = new Float32Array(width);
  const valueRow = new Float32Array(width);
  for (let y = 0; y < height; y++) {
    hue.row(y, hueRow);
    value.row(y, valueRow);
    for (let x = 0; x < width; x++) {
      const h = hueOffset + hueRow[x]! * Math.PI * 4;
      const v = 40 + valueRow[x]! * 200;
      write(
        (y * width + x) * 3,
        v * (0.6 + 0.4 * fastSine(h)),
        v * (0.6 + 0.4 * fastSine(h + 2.1)),
        v * (0.6 + 0.4 * fastSine(h + 4.2)),
      );
    }
  }
};

const GRADIENT_CORNERS: readonly (readonly [Rgb, Rgb, Rgb, Rgb])[] = [
  [
    [255, 94, 98],
    [255, 195, 113],
    [66, 39, 90],
    [115, 75, 109],
  ],
  [
    [18, 194, 233],
    [196, 113, 237],
    [246, 79, 89],
    [255, 224, 130],
  ],
  [
    [0, 82, 212],
    [67, 100, 247],
    [111, 177, 252],
    [230, 240, 255],
  ],
];

/** A smooth four-corner gradient with a soft glow, like a UI background: no grain, so PNG keeps it small. */
const paintGradient: Painter = (pixels, width, height, random) => {
  const [topLeft, topRight, bottomLeft, bottomRight] = pick(random, GRADIENT_CORNERS);
  const glowX = between(random, 0.25, 0.75) * width;
  const glowY = between(random, 0.25, 0.75) * height;
  const glowRadius = height * between(random, 0.4, 0.7);
  for (let y = 0; y < height; y++) {
    const v = y / (height - 1);
    const left = mix(topLeft, bottomLeft, v);
    const right = mix(topRight, bottomRight, v);
    const dy2 = (y - glowY) * (y - glowY);
    for (let x = 0; x < width; x++) {
      const u = x / (width - 1);
      const distance = Math.sqrt((x - glowX) * (x - glowX) + dy2) / glowRadius;
      const glow = distance < 1 ? (1 - distance) * (1 - distance) * 70 : 0;
      const offset = (y * width + x) * 3;
      pixels[offset] = left[0] + (right[0] - left[0]) * u + glow;
      pixels[offset + 1] = left[1] + (right[1] - left[1]) * u + glow;
      pixels[offset + 2] = left[2] + (right[2] - left[2]) * u + glow;
    }
  }
};

const PAINTERS: Readonly<Record<PainterKind, Painter>> = {
  landscape: paintLandscape,
  texture: paintTexture,
  clouds: paintClouds,
  noise: paintNoise,
  gradient: paintGradient,
};
