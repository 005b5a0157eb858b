/**
 * UniPCMultistepScheduler against diffusers.
 *
 * The full loops port diffusers' tests/schedulers/test_scheduler_unipc.py (the 4-D and the 1-D
 * test classes): their dummy samples, dummy model and config. Two kinds of expected numbers:
 * - the values written in diffusers' tests, checked at the tolerance those tests use;
 * - sums to full precision from diffusers' own scheduler code run on CPU torch (with torch's
 *   float32 linspace as torch 2.x computes it), checked to a relative 1e-5 or better.
 */
import { describe, expect, it } from 'vitest';
import { SchedulerConfigError } from '../../src/engine/schedulers/common.ts';
import { createUniPCMultistepScheduler, solveF32 } from '../../src/engine/schedulers/unipc-multistep.ts';
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

/** get_scheduler_config of test_scheduler_unipc.py */
const BASE: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  solver_order: 2,
  solver_type: 'bh2',
  final_sigmas_type: 'sigma_min',
};

const SD15: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  steps_offset: 1,
};

const unipc = (over: SchedulerConfig = {}) => createUniPCMultistepScheduler({ ...BASE, ...over });

type Case = [label: string, config: SchedulerConfig, options: LoopOptions, expectedAbsSum: number];

/** Σ|sample| after the full loop, from diffusers' UniPCMultistepScheduler. */
const CASES: Case[] = [
  ['no_noise', {}, {}, 189.23183825309388],
  ['karras', { use_karras_sigmas: true }, {}, 224.62671200803015],
  ['v_prediction', { prediction_type: 'v_prediction' }, {}, 77.87248390557943],
  ['karras v_prediction', { prediction_type: 'v_prediction', use_karras_sigmas: true }, {}, 150.68729722686112],
  ['with_noise', {}, { tStart: 8 }, 315.5757014155388],
  ['1d no_noise', {}, { oneD: true }, 23.43810242973268],
  ['1d karras', { use_karras_sigmas: true }, { oneD: true }, 27.82208334375173],
  ['1d v_prediction', { prediction_type: 'v_prediction' }, { oneD: true }, 9.645223008003086],
  ['1d karras v_prediction', { prediction_type: 'v_prediction', use_karras_sigmas: true }, { oneD: true }, 18.664007171988487],
  ['1d with_noise', {}, { tStart: 8, oneD: true }, 39.08695167303085],
  ['bh1 o1 x0=True epsilon', { solver_type: 'bh1', solver_order: 1, predict_x0: true, prediction_type: 'epsilon' }, {}, 180.3348948106286],
  ['bh1 o1 x0=True sample', { solver_type: 'bh1', solver_order: 1, predict_x0: true, prediction_type: 'sample' }, {}, 707.2731277665589],
  ['bh1 o1 x0=True v_prediction', { solver_type: 'bh1', solver_order: 1, predict_x0: true, prediction_type: 'v_prediction' }, {}, 65.6147491018346],
  ['bh1 o1 x0=False epsilon', { solver_type: 'bh1', solver_order: 1, predict_x0: false, prediction_type: 'epsilon' }, {}, 190.9933146132389],
  ['bh1 o1 x0=False sample', { solver_type: 'bh1', solver_order: 1, predict_x0: false, prediction_type: 'sample' }, {}, 732.7642515487969],
  ['bh1 o1 x0=False v_prediction', { solver_type: 'bh1', solver_order: 1, predict_x0: false, prediction_type: 'v_prediction' }, {}, 79.9688829073857],
  ['bh1 o2 x0=True epsilon', { solver_type: 'bh1', solver_order: 2, predict_x0: true, prediction_type: 'epsilon' }, {}, 193.57554211554816],
  ['bh1 o2 x0=True sample', { solver_type: 'bh1', solver_order: 2, predict_x0: true, prediction_type: 'sample' }, {}, 750.5043162999209],
  ['bh1 o2 x0=True v_prediction', { solver_type: 'bh1', solver_order: 2, predict_x0: true, prediction_type: 'v_prediction' }, {}, 84.1865132212697],
  ['bh1 o2 x0=False epsilon', { solver_type: 'bh1', solver_order: 2, predict_x0: false, prediction_type: 'epsilon' }, {}, 189.53458695829613],
  ['bh1 o2 x0=False sample', { solver_type: 'bh1', solver_order: 2, predict_x0: false, prediction_type: 'sample' }, {}, 735.6826107541565],
  ['bh1 o2 x0=False v_prediction', { solver_type: 'bh1', solver_order: 2, predict_x0: false, prediction_type: 'v_prediction' }, {}, 75.24218278884655],
  ['bh1 o3 x0=True epsilon', { solver_type: 'bh1', solver_order: 3, predict_x0: true, prediction_type: 'epsilon' }, {}, 193.60010221769335],
  ['bh1 o3 x0=True sample', { solver_type: 'bh1', solver_order: 3, predict_x0: true, prediction_type: 'sample' }, {}, 750.6259199560154],
  ['bh1 o3 x0=True v_prediction', { solver_type: 'bh1', solver_order: 3, predict_x0: true, prediction_type: 'v_prediction' }, {}, 83.88230217789533],
  ['bh1 o3 x0=False epsilon', { solver_type: 'bh1', solver_order: 3, predict_x0: false, prediction_type: 'epsilon' }, {}, 187.8837056402117],
  ['bh1 o3 x0=False sample', { solver_type: 'bh1', solver_order: 3, predict_x0: false, prediction_type: 'sample' }, {}, 731.8086687463801],
  ['bh1 o3 x0=False v_prediction', { solver_type: 'bh1', solver_order: 3, predict_x0: false, prediction_type: 'v_prediction' }, {}, 72.51051046489738],
  ['bh2 o1 x0=True epsilon', { solver_type: 'bh2', solver_order: 1, predict_x0: true, prediction_type: 'epsilon' }, {}, 178.4625117488904],
  ['bh2 o1 x0=True sample', { solver_type: 'bh2', solver_order: 1, predict_x0: true, prediction_type: 'sample' }, {}, 699.9643188433256],
  ['bh2 o1 x0=True v_prediction', { solver_type: 'bh2', solver_order: 1, predict_x0: true, prediction_type: 'v_prediction' }, {}, 62.406851055973675],
  ['bh2 o1 x0=False epsilon', { solver_type: 'bh2', solver_order: 1, predict_x0: false, prediction_type: 'epsilon' }, {}, 197.238182913512],
  ['bh2 o1 x0=False sample', { solver_type: 'bh2', solver_order: 1, predict_x0: false, prediction_type: 'sample' }, {}, 751.1937700356357],
  ['bh2 o1 x0=False v_prediction', { solver_type: 'bh2', solver_order: 1, predict_x0: false, prediction_type: 'v_prediction' }, {}, 89.04574782709824],
  ['bh2 o2 x0=True epsilon', { solver_type: 'bh2', solver_order: 2, predict_x0: true, prediction_type: 'epsilon' }, {}, 189.23183825309388],
  ['bh2 o2 x0=True sample', { solver_type: 'bh2', solver_order: 2, predict_x0: true, prediction_type: 'sample' }, {}, 735.961455716053],
  ['bh2 o2 x0=True v_prediction', { solver_type: 'bh2', solver_order: 2, predict_x0: true, prediction_type: 'v_prediction' }, {}, 77.87248390557943],
  ['bh2 o2 x0=False epsilon', { solver_type: 'bh2', solver_order: 2, predict_x0: false, prediction_type: 'epsilon' }, {}, 187.3960546629969],
  ['bh2 o2 x0=False sample', { solver_type: 'bh2', solver_order: 2, predict_x0: false, prediction_type: 'sample' }, {}, 733.9562721173279],
  ['bh2 o2 x0=False v_prediction', { solver_type: 'bh2', solver_order: 2, predict_x0: false, prediction_type: 'v_prediction' }, {}, 71.212736806061],
  ['bh2 o3 x0=True epsilon', { solver_type: 'bh2', solver_order: 3, predict_x0: true, prediction_type: 'epsilon' }, {}, 189.97293144051218],
  ['bh2 o3 x0=True sample', { solver_type: 'bh2', solver_order: 3, predict_x0: true, prediction_type: 'sample' }, {}, 740.7290770455729],
  ['bh2 o3 x0=True v_prediction', { solver_type: 'bh2', solver_order: 3, predict_x0: true, prediction_type: 'v_prediction' }, {}, 78.15016209046007],
  ['bh2 o3 x0=False epsilon', { solver_type: 'bh2', solver_order: 3, predict_x0: false, prediction_type: 'epsilon' }, {}, 185.52327324048383],
  ['bh2 o3 x0=False sample', { solver_type: 'bh2', solver_order: 3, predict_x0: false, prediction_type: 'sample' }, {}, 731.3210274656303],
  ['bh2 o3 x0=False v_prediction', { solver_type: 'bh2', solver_order: 3, predict_x0: false, prediction_type: 'v_prediction' }, {}, 70.1284707950108],
  ['o3 lof=False 20 steps', { solver_order: 3, lower_order_final: false }, { steps: 20 }, 122.68366985535249],
  ['disable_corrector', { disable_corrector: [0, 3] }, {}, 189.12886379816337],
  ['exponential', { use_exponential_sigmas: true }, {}, 209.71978286188096],
  ['final zero', { final_sigmas_type: 'zero' }, {}, 186.7620446109795],
  ['karras final zero', { final_sigmas_type: 'zero', use_karras_sigmas: true }, {}, 230.178342961648],
  ['karras sigma_min/max', { use_karras_sigmas: true, sigma_min: 0.05, sigma_max: 50.0 }, {}, 214.26299621694488],
  ['sd15 linspace 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: 'linspace', steps_offset: 1, final_sigmas_type: 'zero' }, { steps: 25 }, 191.4246408083709],
  ['sd15 leading 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: 'leading', steps_offset: 1, final_sigmas_type: 'zero' }, { steps: 25 }, 191.6205213610665],
  ['sd15 trailing 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: 'trailing', steps_offset: 1, final_sigmas_type: 'zero' }, { steps: 25 }, 191.55884548119502],
  ['sd15 karras 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, use_karras_sigmas: true, final_sigmas_type: 'zero' }, { steps: 25 }, 204.68121231277473],
];

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

/** SD 1.5, 20 steps, Karras: sigmas (float32, final sigma zero). */
const SD15_KARRAS_SIGMAS_20 = [14.614646911621094, 11.725372314453125, 9.340211868286133, 7.383626937866211, 5.789421081542969, 4.499844074249268, 3.4647555351257324, 2.640847682952881, 1.9909217357635498, 1.483216643333435, 1.0907905101776123, 0.7909495234489441, 0.5647245049476624, 0.39639225602149963, 0.2730397582054138, 0.18416932225227356, 0.12134244292974472, 0.07786081731319427, 0.048481911420822144, 0.029167532920837402, 0.0];

const mean = (x: Float32Array) => absSum(x) / x.length;

describe('UniPCMultistepScheduler', () => {
  it('reproduces the values written in diffusers test_scheduler_unipc.py (4-D sample)', () => {
    expect(Math.abs(mean(fullLoop(unipc())) - 0.2464)).toBeLessThan(1e-3);
    expect(Math.abs(mean(fullLoop(unipc({ use_karras_sigmas: true }))) - 0.2925)).toBeLessThan(1e-3);
    expect(Math.abs(mean(fullLoop(unipc({ prediction_type: 'v_prediction' }))) - 0.1014)).toBeLessThan(1e-3);
    const karrasV = unipc({ prediction_type: 'v_prediction', use_karras_sigmas: true });
    expect(Math.abs(mean(fullLoop(karrasV)) - 0.1966)).toBeLessThan(1e-3);
    const noisy = fullLoop(unipc(), { tStart: 8 });
    expect(Math.abs(absSum(noisy) - 315.5757)).toBeLessThan(1e-2);
    expect(Math.abs(mean(noisy) - 0.4109)).toBeLessThan(1e-3);
  });

  it('reproduces the values written in diffusers test_scheduler_unipc.py (1-D sample)', () => {
    const oneD = { oneD: true };
    expect(Math.abs(mean(fullLoop(unipc(), oneD)) - 0.2441)).toBeLessThan(1e-3);
    expect(Math.abs(mean(fullLoop(unipc({ use_karras_sigmas: true }), oneD)) - 0.2898)).toBeLessThan(1e-3);
    expect(Math.abs(mean(fullLoop(unipc({ prediction_type: 'v_prediction' }), oneD)) - 0.1014)).toBeLessThan(1e-3);
    const karrasV = unipc({ prediction_type: 'v_prediction', use_karras_sigmas: true });
    expect(Math.abs(mean(fullLoop(karrasV, oneD)) - 0.1944)).toBeLessThan(1e-3);
    const noisy = fullLoop(unipc(), { tStart: 8, oneD: true });
    expect(Math.abs(absSum(noisy) - 39.087)).toBeLessThan(1e-2);
    expect(Math.abs(mean(noisy) - 0.4072)).toBeLessThan(1e-3);
  });

  it.each(CASES)('full loop "%s" matches diffusers to 1e-5', (_label, config, options, expected) => {
    const out = fullLoop(unipc(config), options);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(relErr(absSum(out), expected)).toBeLessThan(1e-5);
  });

  it('gives the SD 1.5 timesteps of every timestep_spacing (leading divides by N + 1)', () => {
    for (const [key, expected] of Object.entries(SD15_TIMESTEPS)) {
      const [spacing, n] = key.split(' ');
      const s = createUniPCMultistepScheduler({ ...SD15, timestep_spacing: spacing });
      s.setTimesteps(Number(n));
      expect(s.timesteps, key).toEqual(expected);
    }
    for (const spacing of ['leading', 'linspace', 'trailing']) {
      for (const [n, expected] of Object.entries(SD15_KARRAS_TIMESTEPS)) {
        const s = createUniPCMultistepScheduler({ ...SD15, timestep_spacing: spacing, use_karras_sigmas: true });
        s.setTimesteps(Number(n));
        expect(s.timesteps, `karras ${spacing} ${n}`).toEqual(expected);
      }
    }
    const k = createUniPCMultistepScheduler({ ...SD15, use_karras_sigmas: true });
    k.setTimesteps(20);
    expect(k.sigmas).toEqual(SD15_KARRAS_SIGMAS_20);
  });

  it('solves the small float32 systems of its corrector', () => {
    const x = solveF32(
      [
        [1, 1, 1],
        [-0.5, -1.5, 1],
        [0.25, 2.25, 1],
      ],
      [0.5, 0.1, 0.3],
    );
    const back = [x[0] + x[1] + x[2], -0.5 * x[0] - 1.5 * x[1] + x[2], 0.25 * x[0] + 2.25 * x[1] + x[2]];
    back.forEach((v, i) => expect(v).toBeCloseTo([0.5, 0.1, 0.3][i], 6));
  });

  it('maps DPM-Solver solver types to bh2 as diffusers does, and rejects what it cannot run', () => {
    expect(createUniPCMultistepScheduler({ solver_type: 'midpoint' }).config.solver_type).toBe('bh2');
    expect(() => createUniPCMultistepScheduler({ solver_type: 'nope' })).toThrow(SchedulerConfigError);
    expect(() => createUniPCMultistepScheduler({ use_flow_sigmas: true })).toThrow(SchedulerConfigError);
    expect(() => createUniPCMultistepScheduler({ thresholding: true })).toThrow(/thresholding/);
  });

  it('runs img2img from a begin index like the with-noise loop', () => {
    const s = unipc();
    s.setTimesteps(10);
    s.setBeginIndex(8);
    const ts = s.timesteps.slice(8);
    let x = s.addNoise(dummyDeter(false), dummyDeter(true), ts[0]);
    for (const t of ts) x = s.step(dummyModel(x, t), t, x).prevSample;
    const expected = CASES.find(([label]) => label === 'with_noise');
    expect(relErr(absSum(x), expected?.[3] ?? NaN)).toBeLessThan(1e-5);
  });
});
