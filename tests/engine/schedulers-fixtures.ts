/**
 * Ports of diffusers' scheduler-test fixtures (tests/schedulers/test_schedulers.py) and a driver
 * for their full loops. The deterministic tensors are built as diffusers builds them, arange over a
 * (3, H, W, 4) tensor permuted to (4, 3, H, W), and laid out here in the logical (N, C, H, W) order,
 * so that element p meets element p of torch.randn((4, 3, H, W)) as it does in torch.
 */
import { expect } from 'vitest';
import { createTorchGenerator } from '../../src/engine/random.ts';
import type { Scheduler, SchedulerConfig, SchedulerRng } from '../../src/engine/schedulers/types.ts';

const [B, C] = [4, 3];

/** (H, W) of the 4-D dummy sample, and of the "1-D" one of diffusers' UniPC test (4, 3, 8). */
function spatial(oneD: boolean): [number, number] {
  return oneD ? [1, 8] : [8, 8];
}

/** v(k, n) at each (b, c, h, w), k being the element's position in the unpermuted (C, H, W, B) arange. */
function permutedArange(oneD: boolean, v: (k: number, n: number) => number): Float32Array {
  const [H, W] = spatial(oneD);
  const n = B * C * H * W;
  const out = new Float32Array(n);
  let p = 0;
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) out[p++] = v(((c * H + h) * W + w) * B + b, n);
  return out;
}

/** dummy_sample_deter: arange(n) / n, in float32. */
export function dummySampleDeter(oneD = false): Float32Array {
  return permutedArange(oneD, (k, n) => k / n);
}

/** dummy_noise_deter: arange(n).flip() / n, in float32. */
export function dummyNoiseDeter(oneD = false): Float32Array {
  return permutedArange(oneD, (k, n) => (n - 1 - k) / n);
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

/** Σ|x|, the number diffusers' full-loop tests check. */
export function absSum(x: Float32Array): number {
  return absStats(x).sum;
}

/** mean |x|. */
export function absMean(x: Float32Array): number {
  return absStats(x).mean;
}

export const relErr = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

export interface LoopOptions {
  /** num_inference_steps; 10 as in diffusers' tests unless given. */
  steps?: number;
  /** Start at this step with dummy_noise_deter added (diffusers' test_full_loop_with_noise). */
  tStart?: number;
  /** test_full_uneven_loop: skip the first timesteps without a begin index. */
  skip?: number;
  /** The (4, 3, 8) sample of diffusers' 1-D UniPC test. */
  oneD?: boolean;
  rng?: SchedulerRng;
  /** Noise from torch.manual_seed(seed), a fresh generator per loop (diffusers' full_loop). */
  torchSeed?: number;
  model?: (x: Float32Array, t: number) => Float32Array;
}

/** diffusers' full_loop: sample = dummy_sample_deter * init_noise_sigma, then scale/model/step per timestep. */
export function fullLoop(s: Scheduler, o: LoopOptions = {}): Float32Array {
  s.setTimesteps(o.steps ?? 10);
  const model = o.model ?? dummyModel;
  const rng = o.torchSeed !== undefined ? createTorchGenerator(o.torchSeed) : o.rng;
  let x: Float32Array = dummySampleDeter(o.oneD).map((v) => v * s.initNoiseSigma);
  let timesteps = s.timesteps;
  if (o.tStart !== undefined) {
    timesteps = s.timesteps.slice(o.tStart * s.order);
    x = s.addNoise(x, dummyNoiseDeter(o.oneD), timesteps[0]);
  }
  for (const t of timesteps.slice(o.skip ?? 0)) {
    const input = s.scaleModelInput(x, t);
    x = s.step(model(input, t), t, input, rng).prevSample;
  }
  return x;
}

/**
 * img2img's order of calls: setTimesteps, setBeginIndex(start), add_noise of dummy_noise_deter at
 * the start timestep, then the dummy model and step (no input scaling) over the rest.
 */
export function beginIndexLoop(s: Scheduler, steps: number, start: number): Float32Array {
  s.setTimesteps(steps);
  s.setBeginIndex(start);
  const ts = s.timesteps.slice(start);
  let x = s.addNoise(dummySampleDeter(), dummyNoiseDeter(), ts[0]);
  for (const t of ts) x = s.step(dummyModel(x, t), t, x).prevSample;
  return x;
}

/** |actual − expected| ≤ rel·|expected| + abs. */
export function close(actual: number, expected: number, rel: number, abs = 0): boolean {
  return Math.abs(actual - expected) <= rel * Math.abs(expected) + abs;
}

/** The betas of get_scheduler_config in diffusers' scheduler tests (DDPM's linear schedule). */
export const DIFFUSERS_TEST_BETAS = { num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear' };

/** A full loop's output is finite and its Σ|x| within `rel` of diffusers' sum. */
export function expectAbsSum(out: Float32Array, expected: number, rel = 1e-5): void {
  expect(out.every(Number.isFinite)).toBe(true);
  expect(relErr(absSum(out), expected)).toBeLessThan(rel);
}

/** Stable Diffusion 1.5's scheduler_config.json. */
export const SD15: SchedulerConfig = {
  _class_name: 'PNDMScheduler',
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  steps_offset: 1,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  clip_sample: false,
  trained_betas: null,
};

/** A stand-in UNet that keeps a loop far from cancellation: 0.5·x + 0.1·t/1000, in float32. */
export function halfModel(x: Float32Array, t: number): Float32Array {
  const bias = Math.fround(Math.fround(Math.fround(t) / 1000) * 0.1);
  return x.map((v) => Math.fround(v * 0.5) + bias);
}

/** SD 1.5's "trailing" timesteps by steps: the same in every scheduler, DDIM's family and the multistep solvers alike. */
export const SD15_TRAILING_TIMESTEPS: Record<number, number[]> = {
  1: [999],
  4: [999, 749, 499, 249],
  20: [999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 499, 449, 399, 349, 299, 249, 199, 149, 99, 49],
  30: [999, 966, 932, 899, 866, 832, 799, 766, 732, 699, 666, 632, 599, 566, 532, 499, 466, 432, 399, 366, 332, 299, 266, 232, 199, 166, 132, 99, 66, 32],
  50: [999, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 499, 479, 459, 439, 419, 399, 379, 359, 339, 319, 299, 279, 259, 239, 219, 199, 179, 159, 139, 119, 99, 79, 59, 39, 19],
};

/**
 * The SD 1.5 config's timesteps of the multistep solvers (DPM-Solver, UniPC, DEIS; "leading"
 * divides by N + 1 there), by "<timestep_spacing> <steps>", from diffusers.
 */
export const VP_SD15_TIMESTEPS: Record<string, number[]> = {
  'leading 1': [501],
  'leading 4': [801, 601, 401, 201],
  'leading 20': [941, 894, 847, 800, 753, 706, 659, 612, 565, 518, 471, 424, 377, 330, 283, 236, 189, 142, 95, 48],
  'leading 30': [961, 929, 897, 865, 833, 801, 769, 737, 705, 673, 641, 609, 577, 545, 513, 481, 449, 417, 385, 353, 321, 289, 257, 225, 193, 161, 129, 97, 65, 33],
  'leading 50': [951, 932, 913, 894, 875, 856, 837, 818, 799, 780, 761, 742, 723, 704, 685, 666, 647, 628, 609, 590, 571, 552, 533, 514, 495, 476, 457, 438, 419, 400, 381, 362, 343, 324, 305, 286, 267, 248, 229, 210, 191, 172, 153, 134, 115, 96, 77, 58, 39, 20],
  'linspace 1': [999],
  'linspace 4': [999, 749, 500, 250],
  'linspace 20': [999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 500, 450, 400, 350, 300, 250, 200, 150, 100, 50],
  'linspace 30': [999, 966, 932, 899, 866, 832, 799, 766, 733, 699, 666, 633, 599, 566, 533, 499, 466, 433, 400, 366, 333, 300, 266, 233, 200, 166, 133, 100, 67, 33],
  'linspace 50': [999, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 500, 480, 460, 440, 420, 400, 380, 360, 340, 320, 300, 280, 260, 240, 220, 200, 180, 160, 140, 120, 100, 80, 60, 40, 20],
  'trailing 1': SD15_TRAILING_TIMESTEPS[1],
  'trailing 4': SD15_TRAILING_TIMESTEPS[4],
  'trailing 20': SD15_TRAILING_TIMESTEPS[20],
  'trailing 30': SD15_TRAILING_TIMESTEPS[30],
  'trailing 50': SD15_TRAILING_TIMESTEPS[50],
};

/** The same with use_karras_sigmas, by steps (the same under every timestep_spacing). */
export const VP_SD15_KARRAS_TIMESTEPS: Record<string, number[]> = {
  '1': [999],
  '4': [999, 687, 146, 0],
  '20': [999, 962, 921, 876, 827, 772, 710, 640, 561, 474, 380, 285, 197, 123, 69, 35, 15, 6, 2, 0],
  '30': [999, 975, 949, 923, 894, 863, 830, 795, 757, 716, 672, 624, 572, 517, 458, 397, 334, 273, 214, 162, 117, 80, 53, 33, 20, 11, 6, 3, 1, 0],
  '50': [999, 985, 970, 955, 940, 924, 907, 890, 871, 853, 833, 813, 791, 769, 746, 721, 696, 669, 641, 612, 581, 549, 516, 481, 446, 409, 372, 335, 299, 263, 228, 195, 165, 137, 112, 90, 71, 55, 42, 32, 23, 17, 12, 8, 6, 4, 2, 1, 1, 0],
};

/** SD 1.5, 20 steps, Karras: the multistep solvers' sigmas (float32, final sigma zero). */
export const VP_SD15_KARRAS_SIGMAS_20 = [14.614646911621094, 11.725372314453125, 9.340211868286133, 7.383626937866211, 5.789421081542969, 4.499844074249268, 3.4647555351257324, 2.640847682952881, 1.9909217357635498, 1.483216643333435, 1.0907905101776123, 0.7909495234489441, 0.5647245049476624, 0.39639225602149963, 0.2730397582054138, 0.18416932225227356, 0.12134244292974472, 0.07786081731319427, 0.048481911420822144, 0.029167532920837402, 0.0];

/** A multistep solver's SD 1.5 timesteps under every spacing, plain and with Karras sigmas. */
export function expectVpSd15Timesteps(create: (config: SchedulerConfig) => Scheduler): void {
  for (const [key, expected] of Object.entries(VP_SD15_TIMESTEPS)) {
    const [spacing, n] = key.split(' ');
    const s = create({ ...SD15, timestep_spacing: spacing });
    s.setTimesteps(Number(n));
    expect(s.timesteps, key).toEqual(expected);
  }
  for (const spacing of ['leading', 'linspace', 'trailing']) {
    for (const [n, expected] of Object.entries(VP_SD15_KARRAS_TIMESTEPS)) {
      const s = create({ ...SD15, timestep_spacing: spacing, use_karras_sigmas: true });
      s.setTimesteps(Number(n));
      expect(s.timesteps, `karras ${spacing} ${n}`).toEqual(expected);
    }
  }
}
