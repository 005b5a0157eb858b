/**
 * DEISMultistepScheduler against diffusers.
 *
 * The full loops port diffusers' tests/schedulers/test_scheduler_deis.py: its dummy sample,
 * dummy model and config. Two kinds of expected numbers:
 * - the values written in diffusers' tests, checked at the tolerance those tests use;
 * - sums to full precision from diffusers' own scheduler code run on CPU torch (with torch's
 *   float32 linspace as torch 2.x computes it), checked to a relative 1e-5 or better.
 */
import { describe, expect, it } from 'vitest';
import { SchedulerConfigError } from '../../src/engine/schedulers/common.ts';
import { createDEISMultistepScheduler } from '../../src/engine/schedulers/deis-multistep.ts';
import type { Scheduler, SchedulerConfig } from '../../src/engine/schedulers/types.ts';

// ---- diffusers' SchedulerCommonTest fixtures (tests/schedulers/test_schedulers.py) ----

/** dummy_sample_deter (or dummy_noise_deter when `flip`): arange / n, shaped (3,h,w,4) then permuted to (4,3,h,w). */
function dummyDeter(flip: boolean, oneD = false): Float32Array {
  const [h, w] = oneD ? [1, 8] : [8, 8];
  const n = 4 * 3 * h * w;
  const out = new Float32Array(n);
  for (let b = 0; b < 4; b++)
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const k = ((c * h + y) * w + x) * 4 + b;
          out[((b * 3 + c) * h + y) * w + x] = (flip ? n - 1 - k : k) / n;
        }
  return out;
}

/** dummy_model: sample * t / (t + 1), in float32. */
function dummyModel(sample: Float32Array, t: number): Float32Array {
  const tf = Math.fround(t);
  const t1 = Math.fround(t + 1);
  return sample.map((v) => Math.fround(v * tf) / t1);
}

interface LoopOptions {
  steps?: number;
  /** full_loop_with_noise: start at timesteps[tStart] after add_noise of dummy_noise_deter. */
  tStart?: number;
  /** test_full_uneven_loop: skip the first timesteps without a begin index. */
  skip?: number;
  oneD?: boolean;
}

function fullLoop(scheduler: Scheduler, o: LoopOptions = {}): Float32Array {
  scheduler.setTimesteps(o.steps ?? 10);
  let sample = dummyDeter(false, o.oneD);
  let timesteps = scheduler.timesteps;
  if (o.tStart !== undefined) {
    timesteps = timesteps.slice(o.tStart * scheduler.order);
    sample = scheduler.addNoise(sample, dummyDeter(true, o.oneD), timesteps[0]);
  }
  for (const t of timesteps.slice(o.skip ?? 0)) {
    sample = scheduler.step(dummyModel(sample, t), t, sample).prevSample;
  }
  return sample;
}

function absSum(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += Math.abs(v);
  return s;
}

const relErr = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

/** get_scheduler_config of test_scheduler_deis.py */
const BASE: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  solver_order: 2,
};

const SD15: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  steps_offset: 1,
};

const deis = (over: SchedulerConfig = {}) => createDEISMultistepScheduler({ ...BASE, ...over });

type Case = [label: string, config: SchedulerConfig, options: LoopOptions, expectedAbsSum: number];

/** Σ|sample| after the full loop, from diffusers' DEISMultistepScheduler. */
const CASES: Case[] = [
  ['no_noise', {}, {}, 183.67646353150485],
  ['v_prediction', { prediction_type: 'v_prediction' }, {}, 69.9437307320768],
  ['with_noise', {}, { tStart: 8 }, 315.30162808299065],
  ['o1 epsilon', { solver_order: 1, prediction_type: 'epsilon' }, {}, 172.2642102285754],
  ['o1 sample', { solver_order: 1, prediction_type: 'sample' }, {}, 677.6079487637617],
  ['o1 v_prediction', { solver_order: 1, prediction_type: 'v_prediction' }, {}, 52.00972148714936],
  ['o2 epsilon', { solver_order: 2, prediction_type: 'epsilon' }, {}, 183.67646353150485],
  ['o2 sample', { solver_order: 2, prediction_type: 'sample' }, {}, 715.3591175593901],
  ['o2 v_prediction', { solver_order: 2, prediction_type: 'v_prediction' }, {}, 69.9437307320768],
  ['o3 epsilon', { solver_order: 3, prediction_type: 'epsilon' }, {}, 185.57935229723807],
  ['o3 sample', { solver_order: 3, prediction_type: 'sample' }, {}, 724.3608002832625],
  ['o3 v_prediction', { solver_order: 3, prediction_type: 'v_prediction' }, {}, 72.30441569193499],
  ['karras o3', { use_karras_sigmas: true, solver_order: 3 }, {}, 201.60700694849947],
  ['exponential', { use_exponential_sigmas: true }, {}, 188.9172450476326],
  ['o3 lof=False 20 steps', { solver_order: 3, lower_order_final: false }, { steps: 20 }, 196.2551676996518],
  ['sd15 linspace 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: 'linspace', steps_offset: 1 }, { steps: 25 }, 202.90768179128645],
  ['sd15 leading 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: 'leading', steps_offset: 1 }, { steps: 25 }, 202.98665644641733],
  ['sd15 trailing 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: 'trailing', steps_offset: 1 }, { steps: 25 }, 202.87371449935017],
  ['sd15 karras 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, use_karras_sigmas: true }, { steps: 25 }, 203.4623526217183],
];

/**
 * DEIS's third-order coefficients subtract float32 logs of nearby rho values; numpy's float32 log
 * (SIMD, not correctly rounded) alone moves diffusers' own result of these loops by up to 1.0e-5
 * against correctly rounded logs, which this port uses.
 */
const LOG_SENSITIVE: Record<string, number> = { 'karras o3': 2e-5 };

/** SD 1.5 config, timesteps by "<timestep_spacing> <steps>". */
const SD15_TIMESTEPS: Record<string, number[]> = {
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
  'trailing 1': [999],
  'trailing 4': [999, 749, 499, 249],
  'trailing 20': [999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 499, 449, 399, 349, 299, 249, 199, 149, 99, 49],
  'trailing 30': [999, 966, 932, 899, 866, 832, 799, 766, 732, 699, 666, 632, 599, 566, 532, 499, 466, 432, 399, 366, 332, 299, 266, 232, 199, 166, 132, 99, 66, 32],
  'trailing 50': [999, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 499, 479, 459, 439, 419, 399, 379, 359, 339, 319, 299, 279, 259, 239, 219, 199, 179, 159, 139, 119, 99, 79, 59, 39, 19],
};

/** SD 1.5 config with use_karras_sigmas, by steps (the same under every timestep_spacing). */
const SD15_KARRAS_TIMESTEPS: Record<string, number[]> = {
  '1': [999],
  '4': [999, 687, 146, 0],
  '20': [999, 962, 921, 876, 827, 772, 710, 640, 561, 474, 380, 285, 197, 123, 69, 35, 15, 6, 2, 0],
  '30': [999, 975, 949, 923, 894, 863, 830, 795, 757, 716, 672, 624, 572, 517, 458, 397, 334, 273, 214, 162, 117, 80, 53, 33, 20, 11, 6, 3, 1, 0],
  '50': [999, 985, 970, 955, 940, 924, 907, 890, 871, 853, 833, 813, 791, 769, 746, 721, 696, 669, 641, 612, 581, 549, 516, 481, 446, 409, 372, 335, 299, 263, 228, 195, 165, 137, 112, 90, 71, 55, 42, 32, 23, 17, 12, 8, 6, 4, 2, 1, 1, 0],
};

/** SD 1.5, 20 steps, "leading": sigmas (float32, ending on the smallest training sigma). */
const SD15_LEADING_SIGMAS_20 = [10.425045013427734, 8.088179588317871, 6.380311012268066, 5.111030101776123, 4.152059078216553, 3.415703296661377, 2.8411624431610107, 2.385716676712036, 2.0189621448516846, 1.7189898490905762, 1.4698152542114258, 1.259629487991333, 1.0795871019363403, 0.9229525327682495, 0.7844800353050232, 0.6599331498146057, 0.5456569790840149, 0.43806231021881104, 0.33262351155281067, 0.2204103320837021, 0.029167532920837402];

const mean = (x: Float32Array) => absSum(x) / x.length;

describe('DEISMultistepScheduler', () => {
  it('reproduces the values written in diffusers test_scheduler_deis.py', () => {
    expect(Math.abs(mean(fullLoop(deis())) - 0.23916)).toBeLessThan(1e-3);
    expect(Math.abs(mean(fullLoop(deis({ prediction_type: 'v_prediction' }))) - 0.091)).toBeLessThan(1e-3);
    const noisy = fullLoop(deis(), { tStart: 8 });
    expect(Math.abs(absSum(noisy) - 315.3016)).toBeLessThan(1e-2);
    expect(Math.abs(mean(noisy) - 0.41054)).toBeLessThan(1e-3);
  });

  it.each(CASES)('full loop "%s" matches diffusers to 1e-5', (label, config, options, expected) => {
    const out = fullLoop(deis(config), options);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(relErr(absSum(out), expected)).toBeLessThan(LOG_SENSITIVE[label] ?? 1e-5);
  });

  it('gives the SD 1.5 timesteps of every timestep_spacing (leading divides by N + 1)', () => {
    for (const [key, expected] of Object.entries(SD15_TIMESTEPS)) {
      const [spacing, n] = key.split(' ');
      const s = createDEISMultistepScheduler({ ...SD15, timestep_spacing: spacing });
      s.setTimesteps(Number(n));
      expect(s.timesteps, key).toEqual(expected);
    }
    for (const spacing of ['leading', 'linspace', 'trailing']) {
      for (const [n, expected] of Object.entries(SD15_KARRAS_TIMESTEPS)) {
        const s = createDEISMultistepScheduler({ ...SD15, timestep_spacing: spacing, use_karras_sigmas: true });
        s.setTimesteps(Number(n));
        expect(s.timesteps, `karras ${spacing} ${n}`).toEqual(expected);
      }
    }
    const leading = createDEISMultistepScheduler({ ...SD15, timestep_spacing: 'leading' });
    leading.setTimesteps(20);
    expect(leading.sigmas).toEqual(SD15_LEADING_SIGMAS_20);
  });

  it('maps DPM-Solver algorithm names to deis as diffusers does, and rejects the rest', () => {
    const s = createDEISMultistepScheduler({ algorithm_type: 'dpmsolver++', solver_type: 'midpoint' });
    expect(s.config.algorithm_type).toBe('deis');
    expect(s.config.solver_type).toBe('logrho');
    expect(() => createDEISMultistepScheduler({ algorithm_type: 'sde-dpmsolver++' })).toThrow(SchedulerConfigError);
    expect(() => createDEISMultistepScheduler({ solver_order: 0 })).toThrow(SchedulerConfigError);
  });

  it('refuses to step before setTimesteps', () => {
    const s = deis();
    const x = dummyDeter(false);
    expect(() => s.step(x, 999, x)).toThrow(SchedulerConfigError);
  });
});
