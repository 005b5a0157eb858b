import { describe, expect, it } from 'vitest';
import {
  alphasCumprod,
  interp,
  makeBetas,
  npArange,
  npLinspace,
  npRound,
  resolveConfig,
  SchedulerConfigError,
  sigmaToT,
  torchLinspaceF32,
  trainingSigmas,
} from '../../src/engine/schedulers/common.ts';
import { DIFFUSERS_TEST_BETAS } from './schedulers-fixtures.ts';

// Reference numbers printed by numpy 1.24 / torch 1.13 (CPU, float32).
const SD = { num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear' };

describe('numpy constructors', () => {
  it('np.linspace', () => {
    expect(npLinspace(0, 999, 7)).toEqual([0, 166.5, 333, 499.5, 666, 832.5, 999]);
    expect(npLinspace(0, 999, 1)).toEqual([0]);
  });
  it('np.arange with a float step (trailing spacing)', () => {
    expect(npArange(1000, 0, -1000 / 7)).toEqual([
      1000, 857.1428571428571, 714.2857142857142, 571.4285714285713, 428.57142857142844, 285.71428571428555,
      142.85714285714266,
    ]);
  });
  it('np.round rounds half to even', () => {
    expect([0.5, 1.5, 2.5, 937.5, 812.5, 3.2, 3.7].map(npRound)).toEqual([0, 2, 2, 938, 812, 3, 4]);
  });
  it('np.interp', () => {
    const xp = [0, 1, 2, 3];
    const fp = [0.1, 0.7, 1.9, 2.0].map(Math.fround);
    expect([0.3, 1.5, 2.999, -1, 5, 2].map((x) => interp(x, xp, fp))).toEqual([
      0.2799999974668026, 1.2999999821186066, 1.9998999999761582, 0.10000000149011612, 2.0, 1.899999976158142,
    ]);
  });
});

describe('torch constructors', () => {
  it('torch.linspace float32 (small, exact)', () => {
    expect(Array.from(torchLinspaceF32(0, 1, 7))).toEqual([
      0.0, 0.1666666716337204, 0.3333333432674408, 0.5, 0.6666666269302368, 0.8333333134651184, 1.0,
    ]);
  });

  it('scaled_linear betas, alphas_cumprod and sigmas of SD 1.x, to the bit', () => {
    // torch 2.x's scalar linspace kernel (checked against torch 2.11 on the whole array); torch 1.13
    // vectorised it and differs in a few hundred elements by an ulp or two
    const betas = makeBetas(SD);
    const want: [number, number][] = [
      [0, 0.0008499999530613422],
      [1, 0.0008546985918655992],
      [2, 0.0008594102109782398],
      [499, 0.0048037925735116005],
      [500, 0.004814953543245792],
      [998, 0.01198237482458353],
      [999, 0.011999999172985554],
    ];
    for (const [i, v] of want) expect(betas[i]).toBe(v);
    const ac = alphasCumprod(betas);
    const acWant: [number, number][] = [
      [0, 0.9991499781608582],
      [1, 0.9982960224151611],
      [499, 0.27766942977905273],
      [500, 0.27633246779441833],
      [998, 0.004716695751994848],
      [999, 0.00466009508818388],
    ];
    for (const [i, v] of acWant) expect(ac[i]).toBe(v);
    const sig = trainingSigmas(ac);
    const sigWant: [number, number][] = [
      [0, 0.029167532920837402],
      [1, 0.04131447896361351],
      [499, 1.6128870248794556],
      [500, 1.6182796955108643],
      [998, 14.526280403137207],
      [999, 14.614646911621094],
    ];
    for (const [i, v] of sigWant) expect(sig[i]).toBe(v);
  });

  it('cumprod accumulates in float64 like torch on the CPU', () => {
    const ac = alphasCumprod(makeBetas(DIFFUSERS_TEST_BETAS));
    expect(ac[0]).toBe(0.9998999834060669);
    expect(ac[499]).toBeCloseTo(0.07858724147081375, 7);
    expect(Math.abs(ac[999] / 4.0358307160204276e-5 - 1)).toBeLessThan(1e-6);
  });
});

describe('helpers', () => {
  it('sigmaToT inverts the training sigmas', () => {
    const sig = trainingSigmas(alphasCumprod(makeBetas(SD)));
    const logs = sig.map((s) => Math.fround(Math.log(s)));
    expect(sigmaToT(sig[500], logs)).toBeCloseTo(500, 4);
    expect(sigmaToT(sig[999] * 2, logs)).toBe(999);
    expect(sigmaToT(0, logs)).toBe(0);
  });

  it('resolveConfig keeps known keys, drops unknown ones, coerces API strings', () => {
    const d = { a: 1, flag: false, name: 'x', opt: null as number | null };
    expect(resolveConfig(d, { a: 2, _class_name: 'Foo', flag: 'yes', opt: 0.5 })).toEqual({ a: 2, flag: true, name: 'x', opt: 0.5 });
    expect(resolveConfig(d, { a: '30', flag: 'no' })).toEqual({ a: 30, flag: false, name: 'x', opt: null });
    expect(() => resolveConfig(d, { flag: 'maybe' })).toThrow(SchedulerConfigError);
  });
});
