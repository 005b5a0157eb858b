/**
 * A reproduction of PyTorch's CPU generator, so that a seed gives the same initial latents as diffusers'
 * `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))`.
 *
 * What torch does (aten/src/ATen/core/MT19937RNGEngine.h, CPUGeneratorImpl.cpp, core/TransformationHelper.h,
 * core/DistributionsHelper.h, native/cpu/DistributionTemplates.h, native/cpu/avx_mathfun.h), and so what
 * this module does:
 * - The engine is the reference MT19937 seeded with `init_genrand(seed & 0xffffffff)`: torch keeps a 64-bit
 *   seed but only its low 32 bits reach the state, so seed 2**40 draws exactly what seed 0 draws.
 * - A float uniform is the low 24 bits of one 32-bit draw over 2**24; a double uniform is the low 53 bits of
 *   a 64-bit value made of two draws (the first one as the high word) over 2**53.
 * - randn of 16 or more float32 elements first fills the whole tensor with float uniforms, then turns each
 *   block of 16 into normals with Box-Muller: for j < 8 the radius comes from data[j], the angle from
 *   data[j + 8], cos goes to j and sin to j + 8. When the length is not a multiple of 16, the last 16
 *   elements (overlapping the last full block) get fresh uniforms and are transformed again.
 * - randn of fewer than 16 elements draws one double normal at a time: Box-Muller on two double uniforms
 *   (the first for the angle, the second for the radius) returns r*cos and caches r*sin in the generator.
 *   The cache outlives the call (a vectorised call neither uses nor clears it), so randn(1) after randn(5)
 *   returns the sine left over from the third pair.
 *
 * The block transform exists in two builds, which differ by about an ulp in some elements (up to 2e-6
 * absolute); see `VectorMath`.
 */

/**
 * Which of torch's two builds of the 16-element Box-Muller to follow.
 * - 'avx2': torch's AVX2 kernel, which x86 builds dispatch to on CPUs with AVX2 but without AVX-512
 *   (and Debian's python3-torch 1.13 on any AVX2 CPU). log, sin and cos are the cephes polynomials of
 *   avx_mathfun.h in float32, with the multiply-adds that GCC contracts into FMAs. Bit-exact against
 *   Debian's torch 1.13 in every element compared (3.6 million); a build whose compiler does not contract
 *   them would differ by an ulp in about 1% of elements (measured by emulating that too).
 * - 'libm': torch's portable kernel (AVX-512 dispatch, ARM, other builds): float32 arithmetic with
 *   libm's logf/sinf/cosf. Here those are double Math.log/cos/sin rounded to float (all but correctly
 *   rounded), whereas glibc's are within about 0.8 ulp, so about 1.5% of elements differ from
 *   glibc-based torch by one ulp (at most 2.4e-7 absolute).
 */
export type VectorMath = 'avx2' | 'libm';

export interface TorchGeneratorOptions {
  /** Defaults to 'avx2', the build behind most x86 desktops and the python3-torch the tests compare with. */
  vectorMath?: VectorMath;
}

/** Something that draws standard normals the way successive `torch.randn(length)` calls on one generator do. */
export interface TorchRng {
  /** The next `length` float32 standard normals, as `torch.randn(length, generator=g)` would return them. */
  randn(length: number): Float32Array;
}

const STATE_SIZE = 624;
const SHIFT_SIZE = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

const TWO_POW_24 = 16777216;
const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;
/** Below this length torch takes the scalar double path, from it on the blocks of 16. */
const BLOCK = 16;
const MAX_SEED = (1n << 64n) - 1n;

class Mt19937 {
  private readonly state = new Uint32Array(STATE_SIZE);
  private index = STATE_SIZE;

  constructor(seed32: number) {
    const s = this.state;
    s[0] = seed32;
    for (let i = 1; i < STATE_SIZE; i++) {
      const prev = s[i - 1];
      // The product has to wrap at 32 bits as the C++ uint32 arithmetic does; Math.imul does that.
      s[i] = Math.imul(1812433253, prev ^ (prev >>> 30)) + i;
    }
  }

  /** The next tempered 32-bit output, unsigned. */
  next(): number {
    if (this.index >= STATE_SIZE) this.twist();
    let y = this.state[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const s = this.state;
    for (let i = 0; i < STATE_SIZE; i++) {
      const next = i + 1 < STATE_SIZE ? i + 1 : 0;
      const far = i + SHIFT_SIZE < STATE_SIZE ? i + SHIFT_SIZE : i + SHIFT_SIZE - STATE_SIZE;
      const y = (s[i] & UPPER_MASK) | (s[next] & LOWER_MASK);
      s[i] = s[far] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.index = 0;
  }
}

/** The low 32 bits of a seed, the only part torch's MT19937 uses; rejects what is not a uint64. */
function seedLow32(seed: number | bigint): number {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed > MAX_SEED) throw new RangeError(`seed must be in [0, 2^64 - 1], got ${seed}`);
    return Number(BigInt.asUintN(32, seed));
  }
  // Above 2^53 a number no longer names one integer, so larger seeds have to come as bigints. Negative
  // seeds are refused rather than remapped: torch versions disagree on how they map them.
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be a non-negative safe integer or a bigint, got ${seed}`);
  }
  return seed >>> 0; // ToUint32 is exactly `seed mod 2^32` for an integral number
}

// ---------------------------------------------------------------------------------------------------------
// float32 arithmetic: one float32 operation (+, -, *, sqrt) on float32 inputs equals Math.fround of the same
// operation in double, because a double carries more than twice float32's precision. A fused multiply-add
// is the exception, handled in fmaf.

const fround = Math.fround;

/** Fused multiply-add of float32 values with one rounding, as vfmadd*ps computes it. */
function fmaf(a: number, b: number, c: number): number {
  const p = a * b; // exact
  const s = p + c;
  const r = fround(s);
  // s is the double nearest p + c; rounding it again to float can only go wrong when s sits exactly on a
  // midpoint between two floats while p + c does not, so look at the rounding error of the double sum.
  const half = s - r;
  if (half === 0) return r;
  const other = r + 2 * half;
  if (fround(other) !== other) return r; // s is not a midpoint, so r is right whatever the error
  const bv = s - p;
  const err = p - (s - bv) + (c - bv);
  if (err === 0) return r; // s is exact: a true tie, which the rounding of s already settled (to even)
  return err > 0 === other > r ? other : r;
}

// cephes constants of avx_mathfun.h, as the float32 values the kernel loads.
const SQRT_HALF = fround(0.707106781186547524);
const LOG_P0 = fround(7.0376836292e-2);
const LOG_P1 = fround(-1.151461031e-1);
const LOG_P2 = fround(1.167699874e-1);
const LOG_P3 = fround(-1.2420140846e-1);
const LOG_P4 = fround(1.4249322787e-1);
const LOG_P5 = fround(-1.6668057665e-1);
const LOG_P6 = fround(2.0000714765e-1);
const LOG_P7 = fround(-2.4999993993e-1);
const LOG_P8 = fround(3.3333331174e-1);
const LOG_Q1 = fround(-2.1219444e-4);
const LOG_Q2 = fround(0.693359375);
const FOUR_OVER_PI = fround(1.27323954473516);
const MINUS_DP1 = fround(-0.78515625);
const MINUS_DP2 = fround(-2.4187564849853515625e-4);
const MINUS_DP3 = fround(-3.77489497744594108e-8);
const SIN_P0 = fround(-1.9515295891e-4);
const SIN_P1 = fround(8.3321608736e-3);
const SIN_P2 = fround(-1.6666654611e-1);
const COS_P0 = fround(2.443315711809948e-5);
const COS_P1 = fround(-1.388731625493765e-3);
const COS_P2 = fround(4.166664568298827e-2);
/** The AVX2 kernel's 2*pi is `_mm256_set1_ps(2.0f * pi<double>)`: rounded to float. */
const TWO_PI_FLOAT = fround(2 * Math.PI);
/** The portable kernel's `2.0f * c10::pi<double> * u2` multiplies in double and rounds once. */
const TWO_PI_DOUBLE = 2 * Math.PI;

/** 2^-k for k in [0, 32], to scale an integer into [0.5, 1) exactly. */
const INVERSE_POWERS_OF_TWO = Float64Array.from({ length: 33 }, (_, k) => 2 ** -k);

/**
 * avx_mathfun's log256_ps for one lane, for x = m / 2^24 with m an integer in [1, 2^24] (what 1 - u is for
 * a float uniform u). The kernel splits x into exponent and mantissa through its bits; for such x that is
 * e = bitLength(m) - 24 and mantissa m / 2^bitLength(m), which integer arithmetic gives faster than going
 * through a typed array.
 */
function logAvx2(m: number): number {
  const bitLength = 32 - Math.clz32(m);
  let e = bitLength - 24;
  let x = m * INVERSE_POWERS_OF_TWO[bitLength]; // in [0.5, 1), exact
  if (x < SQRT_HALF) {
    e -= 1;
    x = fround(fround(x - 1) + x);
  } else {
    x = fround(x - 1);
  }
  const z = fround(x * x);
  let y = fmaf(LOG_P0, x, LOG_P1);
  y = fmaf(y, x, LOG_P2);
  y = fmaf(y, x, LOG_P3);
  y = fmaf(y, x, LOG_P4);
  y = fmaf(y, x, LOG_P5);
  y = fmaf(y, x, LOG_P6);
  y = fmaf(y, x, LOG_P7);
  y = fmaf(y, x, LOG_P8);
  y = fround(y * x);
  y = fmaf(y, z, fround(e * LOG_Q1));
  y = fround(y - fround(z * 0.5));
  return fmaf(e, LOG_Q2, fround(x + y));
}

/**
 * avx_mathfun's sincos256_ps for one lane, for theta >= 0, scaled by radius: writes radius * cos(theta) to
 * data[index] and radius * sin(theta) to data[index + 8] (the stores round the exact products).
 */
function writeSinCosAvx2(theta: number, radius: number, data: Float32Array, index: number): void {
  const j = (Math.trunc(fround(theta * FOUR_OVER_PI)) + 1) & ~1;
  let x = fmaf(j, MINUS_DP1, theta);
  x = fmaf(j, MINUS_DP2, x);
  x = fmaf(j, MINUS_DP3, x);
  const z = fround(x * x);
  let c = fmaf(COS_P0, z, COS_P1);
  c = fmaf(c, z, COS_P2);
  c = fround(c * z);
  c = fmaf(c, z, -fround(z * 0.5));
  c = fround(c + 1);
  let s = fmaf(SIN_P0, z, SIN_P1);
  s = fmaf(s, z, SIN_P2);
  s = fround(s * z);
  s = fmaf(s, x, x);
  const swap = (j & 2) !== 0;
  const sine = swap ? c : s;
  const cosine = swap ? s : c;
  data[index] = radius * (~(j - 2) & 4 ? -cosine : cosine);
  data[index + 8] = radius * (j & 4 ? -sine : sine);
}

type BlockTransform = (data: Float32Array, offset: number) => void;

/** torch's `normal_fill_16_AVX2` with mean 0 and std 1 (its final fmadd with those is exact). */
function boxMuller16Avx2(data: Float32Array, offset: number): void {
  for (let j = offset; j < offset + 8; j++) {
    // 1 - u as the integer numerator over 2^24; u * 2^24 is an integer below 2^24.
    const radius = fround(Math.sqrt(-2 * logAvx2(TWO_POW_24 - data[j] * TWO_POW_24)));
    writeSinCosAvx2(fround(TWO_PI_FLOAT * data[j + 8]), radius, data, j);
  }
}

/** torch's portable `normal_fill_16<float>` with mean 0 and std 1. */
function boxMuller16Libm(data: Float32Array, offset: number): void {
  for (let j = offset; j < offset + 8; j++) {
    // 1 - u is exact in float32; -2 * log and sqrt-then-fround are the float32 operations.
    const radius = fround(Math.sqrt(-2 * fround(Math.log(1 - data[j]))));
    const theta = fround(TWO_PI_DOUBLE * data[j + 8]);
    // The Float32Array stores round the exact products radius * cos and radius * sin.
    data[j] = radius * fround(Math.cos(theta));
    data[j + 8] = radius * fround(Math.sin(theta));
  }
}

class TorchCpuGenerator implements TorchRng {
  private readonly engine: Mt19937;
  private readonly transform: BlockTransform;
  /** torch's `next_double_normal_sample_`: the sine half of the last scalar Box-Muller pair. */
  private cachedNormal: number | null = null;

  constructor(seed: number | bigint, vectorMath: VectorMath) {
    this.engine = new Mt19937(seedLow32(seed));
    this.transform = vectorMath === 'libm' ? boxMuller16Libm : boxMuller16Avx2;
  }

  randn(length: number): Float32Array {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`length must be a non-negative integer, got ${length}`);
    }
    const out = new Float32Array(length);
    if (length >= BLOCK) this.fillBlocks(out);
    else for (let i = 0; i < length; i++) out[i] = this.scalarNormal();
    return out;
  }

  private uniformFloat(): number {
    return (this.engine.next() & 0xffffff) / TWO_POW_24; // exact in float32
  }

  private uniformDouble(): number {
    const hi = this.engine.next();
    const lo = this.engine.next();
    // The low 53 bits of (hi << 32 | lo) are 21 bits of hi and all of lo; the sum is exact.
    return ((hi & 0x1fffff) * TWO_POW_32 + lo) / TWO_POW_53;
  }

  private scalarNormal(): number {
    if (this.cachedNormal !== null) {
      const cached = this.cachedNormal;
      this.cachedNormal = null;
      return cached;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    const radius = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = TWO_PI_DOUBLE * u1;
    this.cachedNormal = radius * Math.sin(theta);
    return radius * Math.cos(theta);
  }

  private fillBlocks(data: Float32Array): void {
    const n = data.length;
    for (let i = 0; i < n; i++) data[i] = this.uniformFloat();
    for (let i = 0; i + BLOCK <= n; i += BLOCK) this.transform(data, i);
    if (n % BLOCK !== 0) {
      const start = n - BLOCK;
      for (let i = start; i < n; i++) data[i] = this.uniformFloat();
      this.transform(data, start);
    }
  }
}

/**
 * A generator whose successive `randn(n)` calls give what successive `torch.randn(n)` calls give after
 * `torch.Generator("cpu").manual_seed(seed)`. `seed` is an integer in [0, 2^64 - 1]; above 2^53 pass a bigint.
 */
export function createTorchGenerator(seed: number | bigint, options: TorchGeneratorOptions = {}): TorchRng {
  return new TorchCpuGenerator(seed, options.vectorMath ?? 'avx2');
}

/**
 * A fresh seed for requests that leave `seed` null. It is drawn below 2^32 because that is the range the
 * hosted API reports seeds in, every such value is exact in a JSON number (and in a JS number), and torch
 * only uses the low 32 bits of a seed anyway, so a wider range would give no further distinct noise.
 */
export function randomSeed(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0];
}
