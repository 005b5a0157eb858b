/**
 * Ports of diffusers' scheduler-test fixtures (tests/schedulers/test_schedulers.py) and a driver
 * for their full loops. The deterministic tensors are built as diffusers builds them, arange over a
 * (3, 8, 8, 4) tensor permuted to (4, 3, 8, 8), and laid out here in the logical (N, C, H, W) order,
 * so that element p meets element p of torch.randn((4, 3, 8, 8)) as it does in torch.
 */
import type { Scheduler, SchedulerRng } from '../../src/engine/schedulers/types.ts';

const [B, C, H, W] = [4, 3, 8, 8];
const NUM_ELEMS = B * C * H * W;

/** v(k) at each (b, c, h, w), k being the element's position in the unpermuted (C, H, W, B) arange. */
function permutedArange(v: (k: number) => number): Float32Array {
  const out = new Float32Array(NUM_ELEMS);
  let p = 0;
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) out[p++] = v(((c * H + h) * W + w) * B + b);
  return out;
}

/** dummy_sample_deter: arange(n) / n, in float32. */
export function dummySampleDeter(): Float32Array {
  return permutedArange((k) => k / NUM_ELEMS);
}

/** dummy_noise_deter: arange(n).flip() / n, in float32. */
export function dummyNoiseDeter(): Float32Array {
  return permutedArange((k) => (NUM_ELEMS - 1 - k) / NUM_ELEMS);
}

/** dummy_model: sample * t / (t + 1), each op in float32 as torch runs it. */
export function dummyModel(sample: Float32Array, t: number): Float32Array {
  const tf = Math.fround(t);
  const den = Math.fround(tf + 1);
  return sample.map((x) => Math.fround(x * tf) / den);
}

export function absStats(x: Float32Array): { sum: number; mean: number } {
  let sum = 0;
  for (const v of x) sum += Math.abs(v);
  return { sum, mean: sum / x.length };
}

export interface LoopOptions {
  steps: number;
  /** Start at this step with dummy_noise_deter added (diffusers' test_full_loop_with_noise). */
  tStart?: number;
  rng?: SchedulerRng;
  model?: (x: Float32Array, t: number) => Float32Array;
}

/** diffusers' full_loop: sample = dummy_sample_deter * init_noise_sigma, then scale/model/step per timestep. */
export function fullLoop(s: Scheduler, o: LoopOptions): Float32Array {
  s.setTimesteps(o.steps);
  const model = o.model ?? dummyModel;
  let x: Float32Array = dummySampleDeter().map((v) => v * s.initNoiseSigma);
  let timesteps = s.timesteps;
  if (o.tStart !== undefined) {
    timesteps = s.timesteps.slice(o.tStart * s.order);
    x = s.addNoise(x, dummyNoiseDeter(), timesteps[0]);
  }
  for (const t of timesteps) {
    const input = s.scaleModelInput(x, t);
    x = s.step(model(input, t), t, input, o.rng).prevSample;
  }
  return x;
}

/** |actual − expected| ≤ rel·|expected| + abs. */
export function close(actual: number, expected: number, rel: number, abs = 0): boolean {
  return Math.abs(actual - expected) <= rel * Math.abs(expected) + abs;
}
