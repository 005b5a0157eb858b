/**
 * Seeded random numbers for model weights. Only integer arithmetic and exact int->float
 * conversions are used (no Math.log/Math.cos), so the bytes cannot depend on a platform's libm.
 * Every tensor draws from its own stream keyed by (seed, name): adding or reordering tensors in
 * one model leaves every other tensor's bytes as they were.
 */

/** FNV-1a over UTF-16 code units, then mixed with the seed. */
function hashKey(seed: number, key: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private state: number;

  constructor(seed: number, key: string) {
    this.state = hashKey(seed, key);
  }

  /** splitmix32: a full-period 32-bit generator with good mixing for its size. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Zero mean, unit variance (uniform on [-sqrt(3), sqrt(3)]). */
  unit(): number {
    return (this.uniform() * 2 - 1) * Math.sqrt(3);
  }
}

/** `n` values of zero mean and standard deviation `std` (plus `mean`). */
export function randomArray(seed: number, key: string, n: number, std: number, mean = 0): Float32Array {
  const rng = new Rng(seed, key);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * rng.unit();
  return out;
}
