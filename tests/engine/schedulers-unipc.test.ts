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
import type { SchedulerConfig } from '../../src/engine/schedulers/types.ts';
import {
  DIFFUSERS_TEST_BETAS,
  absMean,
  absSum,
  beginIndexLoop,
  expectAbsSum,
  expectVpSd15Timesteps,
  fullLoop,
  type LoopOptions,
  relErr,
  SD15,
  VP_SD15_KARRAS_SIGMAS_20,
} from './schedulers-fixtures.ts';

/** get_scheduler_config of test_scheduler_unipc.py */
const BASE: SchedulerConfig = {
  ...DIFFUSERS_TEST_BETAS,
  solver_order: 2,
  solver_type: 'bh2',
  final_sigmas_type: 'sigma_min',
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


describe('UniPCMultistepScheduler', () => {
  it('reproduces the values written in diffusers test_scheduler_unipc.py (4-D sample)', () => {
    expect(Math.abs(absMean(fullLoop(unipc())) - 0.2464)).toBeLessThan(1e-3);
    expect(Math.abs(absMean(fullLoop(unipc({ use_karras_sigmas: true }))) - 0.2925)).toBeLessThan(1e-3);
    expect(Math.abs(absMean(fullLoop(unipc({ prediction_type: 'v_prediction' }))) - 0.1014)).toBeLessThan(1e-3);
    const karrasV = unipc({ prediction_type: 'v_prediction', use_karras_sigmas: true });
    expect(Math.abs(absMean(fullLoop(karrasV)) - 0.1966)).toBeLessThan(1e-3);
    const noisy = fullLoop(unipc(), { tStart: 8 });
    expect(Math.abs(absSum(noisy) - 315.5757)).toBeLessThan(1e-2);
    expect(Math.abs(absMean(noisy) - 0.4109)).toBeLessThan(1e-3);
  });

  it('reproduces the values written in diffusers test_scheduler_unipc.py (1-D sample)', () => {
    const oneD = { oneD: true };
    expect(Math.abs(absMean(fullLoop(unipc(), oneD)) - 0.2441)).toBeLessThan(1e-3);
    expect(Math.abs(absMean(fullLoop(unipc({ use_karras_sigmas: true }), oneD)) - 0.2898)).toBeLessThan(1e-3);
    expect(Math.abs(absMean(fullLoop(unipc({ prediction_type: 'v_prediction' }), oneD)) - 0.1014)).toBeLessThan(1e-3);
    const karrasV = unipc({ prediction_type: 'v_prediction', use_karras_sigmas: true });
    expect(Math.abs(absMean(fullLoop(karrasV, oneD)) - 0.1944)).toBeLessThan(1e-3);
    const noisy = fullLoop(unipc(), { tStart: 8, oneD: true });
    expect(Math.abs(absSum(noisy) - 39.087)).toBeLessThan(1e-2);
    expect(Math.abs(absMean(noisy) - 0.4072)).toBeLessThan(1e-3);
  });

  it.each(CASES)('full loop "%s" matches diffusers to 1e-5', (_label, config, options, expected) => {
    expectAbsSum(fullLoop(unipc(config), options), expected);
  });

  it('gives the SD 1.5 timesteps of every timestep_spacing (leading divides by N + 1)', () => {
    expectVpSd15Timesteps(createUniPCMultistepScheduler);
    const k = createUniPCMultistepScheduler({ ...SD15, use_karras_sigmas: true });
    k.setTimesteps(20);
    expect(k.sigmas).toEqual(VP_SD15_KARRAS_SIGMAS_20);
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
    const x = beginIndexLoop(unipc(), 10, 8);
    const expected = CASES.find(([label]) => label === 'with_noise');
    expect(relErr(absSum(x), expected?.[3] ?? NaN)).toBeLessThan(1e-5);
  });
});
