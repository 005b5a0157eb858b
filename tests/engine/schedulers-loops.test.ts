import { describe, expect, it } from 'vitest';
import { createTorchGenerator } from '../../src/engine/random.ts';
import { createScheduler } from '../../src/engine/schedulers/index.ts';
import { IPNDMScheduler } from '../../src/engine/schedulers/ipndm.ts';
import type { Scheduler } from '../../src/engine/schedulers/types.ts';
import {
  absStats,
  close,
  DIFFUSERS_TEST_BETAS,
  dummyModel,
  dummyNoiseDeter,
  dummySampleDeter,
  fullLoop,
} from './schedulers-fixtures.ts';

/*
 * The deterministic full loops of diffusers' tests/schedulers/test_scheduler_*.py, ported with
 * their configs, dummy sample and dummy model; ancestral noise comes from torch.manual_seed(0)
 * through src/engine/random.ts.
 * - want: [sum, mean, sum tolerance, mean tolerance] as written in the diffusers test (absolute).
 * - ref: the same loop run through diffusers' own scheduler code on CPU torch with torch 2.x's
 *   linspace (checked bit-equal to torch 2.11's betas), full float32 precision; matched to 1e-5
 *   relative. Some diffusers expectations predate torch 2's linspace (PNDM with beta_start 0.01
 *   moves by 2e-5 relative), which is why both are kept.
 */
const B1100 = { ...DIFFUSERS_TEST_BETAS, num_train_timesteps: 1100 };
type Want = [number, number, number, number] | null;

function check(x: Float32Array, want: Want, ref: [number, number]): void {
  const { sum, mean } = absStats(x);
  if (want) {
    expect(Math.abs(sum - want[0])).toBeLessThan(want[2]);
    expect(Math.abs(mean - want[1])).toBeLessThan(want[3]);
  }
  expect(close(sum, ref[0], 1e-5), `sum ${sum} vs ${ref[0]}`).toBe(true);
  expect(close(mean, ref[1], 1e-5), `mean ${mean} vs ${ref[1]}`).toBe(true);
}

const SIGMA_LOOPS: {
  name: string;
  case: string;
  config: Record<string, unknown>;
  tStart?: number;
  want: Want;
  ref: [number, number];
}[] = [
  { name: 'EulerAncestralDiscreteScheduler', case: 'no_noise', config: {}, want: [152.3192, 0.1983, 0.01, 0.001], ref: [152.3192901611328, 0.19833241403102875] },
  { name: 'EulerAncestralDiscreteScheduler', case: 'vpred', config: { prediction_type: 'v_prediction' }, want: [108.4439, 0.1412, 0.01, 0.001], ref: [108.44389343261719, 0.14120298624038696] },
  { name: 'EulerAncestralDiscreteScheduler', case: 'with_noise', config: {}, tStart: 8, want: [56163.0508, 73.129, 0.01, 0.001], ref: [56163.05078125, 73.12897491455078] },
  { name: 'LMSDiscreteScheduler', case: 'no_noise', config: {}, want: [1006.388, 1.31, 0.01, 0.001], ref: [1006.38818359375, 1.3104013204574585] },
  { name: 'LMSDiscreteScheduler', case: 'vpred', config: { prediction_type: 'v_prediction' }, want: [0.0017, 2.2676e-06, 0.01, 0.001], ref: [0.0017415338661521673, 2.267622221552301e-06] },
  { name: 'LMSDiscreteScheduler', case: 'karras', config: { use_karras_sigmas: true }, want: [3812.9927, 4.9648, 0.02, 0.001], ref: [3812.994140625, 4.964836120605469] },
  { name: 'LMSDiscreteScheduler', case: 'with_noise', config: {}, tStart: 8, want: [27663.6895, 36.0204, 0.01, 0.001], ref: [27663.6953125, 36.02043533325195] },
  { name: 'HeunDiscreteScheduler', case: 'no_noise', config: {}, want: [0.1233, 0.0002, 0.01, 0.001], ref: [0.1233307421207428, 0.00016058690380305052] },
  { name: 'HeunDiscreteScheduler', case: 'vpred', config: { prediction_type: 'v_prediction' }, want: [4.6934e-07, 6.1112e-10, 0.01, 0.001], ref: [4.923867322759179e-07, 6.411285391472177e-10] },
  { name: 'HeunDiscreteScheduler', case: 'karras', config: { use_karras_sigmas: true }, want: [0.00015, 1.9869554535034695e-07, 0.01, 0.01], ref: [0.00015259803330991417, 1.9869536060923565e-07] },
  { name: 'HeunDiscreteScheduler', case: 'with_noise', config: {}, tStart: 8, want: [75074.8906, 97.7538, 0.01, 0.001], ref: [75074.890625, 97.7537612915039] },
  { name: 'KDPM2DiscreteScheduler', case: 'no_noise', config: {}, want: [20.4125, 0.0266, 0.01, 0.001], ref: [20.412487030029297, 0.026578759774565697] },
  { name: 'KDPM2DiscreteScheduler', case: 'vpred', config: { prediction_type: 'v_prediction' }, want: [4.6934e-07, 6.1112e-10, 0.01, 0.001], ref: [6.1025581089779735e-05, 7.946039204398403e-08] },
  { name: 'KDPM2DiscreteScheduler', case: 'with_noise', config: {}, tStart: 8, want: [70408.4062, 91.6776, 0.01, 0.001], ref: [70408.40625, 91.6776123046875] },
  { name: 'KDPM2AncestralDiscreteScheduler', case: 'no_noise', config: {}, want: [13979.9433, 18.203, 0.01, 0.005], ref: [13979.947265625, 18.20305633544922] },
  { name: 'KDPM2AncestralDiscreteScheduler', case: 'vpred', config: { prediction_type: 'v_prediction' }, want: [331.8133, 0.432, 0.01, 0.001], ref: [331.8133239746094, 0.43204858899116516] },
  { name: 'KDPM2AncestralDiscreteScheduler', case: 'with_noise', config: {}, tStart: 8, want: [93087.3437, 121.2074, 0.01, 0.005], ref: [93087.34375, 121.20748138427734] },
];

describe('k-diffusion schedulers, 10-step full loops (1100 training steps, linear betas)', () => {
  for (const c of SIGMA_LOOPS) {
    it(`${c.name} ${c.case}`, () => {
      const s = createScheduler(c.name, { ...B1100, ...c.config });
      check(fullLoop(s, { steps: 10, tStart: c.tStart, rng: createTorchGenerator(0) }), c.want, c.ref);
    });
  }

  it('order-2 schedulers call the model 2N − 1 times', () => {
    for (const name of ['HeunDiscreteScheduler', 'KDPM2DiscreteScheduler', 'KDPM2AncestralDiscreteScheduler']) {
      const s = createScheduler(name, B1100);
      s.setTimesteps(10);
      expect(s.order).toBe(2);
      expect(s.timesteps).toHaveLength(19);
    }
  });

  it('ancestral schedulers draw one sample-sized noise per ancestral step', () => {
    const counting = () => {
      const g = createTorchGenerator(0);
      const rng = { calls: 0, randn: (n: number) => (rng.calls++, g.randn(n)) };
      return rng;
    };
    const ea = counting();
    fullLoop(createScheduler('EulerAncestralDiscreteScheduler', B1100), { steps: 10, rng: ea });
    expect(ea.calls).toBe(10);
    const k2a = counting();
    fullLoop(createScheduler('KDPM2AncestralDiscreteScheduler', B1100), { steps: 10, rng: k2a });
    expect(k2a.calls).toBe(9);
  });
});

const PNDM_CONFIG = DIFFUSERS_TEST_BETAS;
const PNDM_LOOPS: { case: string; config: Record<string, unknown>; want: Want; ref: [number, number] }[] = [
  { case: 'no_noise', config: {}, want: [198.1318, 0.258, 0.01, 0.001], ref: [198.13189697265625, 0.2579842507839203] },
  { case: 'vpred', config: { prediction_type: 'v_prediction' }, want: [67.3986, 0.0878, 0.01, 0.001], ref: [67.39862060546875, 0.0877586230635643] },
  { case: 'alpha_one', config: { set_alpha_to_one: true, beta_start: 0.01 }, want: [230.0399, 0.2995, 0.01, 0.001], ref: [230.03445434570312, 0.2995240390300751] },
  { case: 'no_alpha_one', config: { set_alpha_to_one: false, beta_start: 0.01 }, want: [186.9482, 0.2434, 0.01, 0.001], ref: [186.94212341308594, 0.24341422319412231] },
  { case: 'skip_prk', config: { skip_prk_steps: true }, want: null, ref: [197.71560668945312, 0.2574422061443329] },
];

describe('PNDMScheduler full loops (test_scheduler_pndm.py, 10 steps)', () => {
  for (const c of PNDM_LOOPS) {
    it(c.case, () => check(fullLoop(createScheduler('PNDMScheduler', { ...PNDM_CONFIG, ...c.config }), { steps: 10 }), c.want, c.ref));
  }

  it('Runge-Kutta warm-up: 12 PRK calls, then PLMS', () => {
    const s = createScheduler('PNDMScheduler', PNDM_CONFIG);
    s.setTimesteps(10);
    expect(s.timesteps).toEqual([900, 850, 850, 800, 800, 750, 750, 700, 700, 650, 650, 600, 600, 500, 400, 300, 200, 100, 0]);
  });
});

describe('DDPMScheduler (test_scheduler_ddpm.py: 1000 steps, no set_timesteps)', () => {
  const D = { ...PNDM_CONFIG, variance_type: 'fixed_small', clip_sample: true };
  const run = (s: Scheduler, timesteps: number[], x: Float32Array) => {
    const g = createTorchGenerator(0);
    for (const t of timesteps) x = s.step(dummyModel(x, t), t, x, g).prevSample;
    return x;
  };
  const all = Array.from({ length: 1000 }, (_, i) => 999 - i);
  it('no noise', () => check(run(createScheduler('DDPMScheduler', D), all, dummySampleDeter()), [258.9606, 0.3372, 1e-2, 1e-3], [258.96063232421875, 0.33718833327293396]));
  it('v_prediction', () =>
    check(run(createScheduler('DDPMScheduler', { ...D, prediction_type: 'v_prediction' }), all, dummySampleDeter()), [202.0296, 0.2631, 1e-2, 1e-3], [202.02957153320312, 0.2630593478679657]));
  it('with noise from step 998', () => {
    const s = createScheduler('DDPMScheduler', D);
    const ts = s.timesteps.slice(998);
    const x = s.addNoise(dummySampleDeter(), dummyNoiseDeter(), ts[0]);
    check(run(s, ts, x), [387.9466, 0.5051, 1e-2, 1e-3], [387.94659423828125, 0.5051388144493103]);
  });
});

describe('IPNDMScheduler (test_scheduler_ipndm.py)', () => {
  it('adds noise in its own parameterisation at the begin index, which one exact step inverts', () => {
    const s = new IPNDMScheduler({ num_train_timesteps: 1000 });
    s.setTimesteps(10);
    s.setBeginIndex(9); // the last step goes to t = 0, where alpha = 1 and sigma = 0
    const x0 = Float32Array.from([0.5, -1, 2]);
    const noise = Float32Array.from([1, 0.25, -0.5]);
    const noisy = s.addNoise(x0, noise, s.timesteps[9]);
    const angle = (s.timesteps[9] * Math.PI) / 2;
    noisy.forEach((v, k) => expect(v).toBeCloseTo(Math.cos(angle) * x0[k] + Math.sin(angle) * noise[k], 6));
    // IPNDM combines sigma * x + alpha * output into its noise direction; a model whose output makes
    // that direction the true noise takes a first-order step straight to x0.
    const [alpha, sigma] = [Math.cos(angle), Math.sin(angle)];
    const output = noise.map((n, k) => (n - sigma * noisy[k]) / alpha);
    const out = s.step(output, s.timesteps[9], noisy).prevSample;
    out.forEach((v, k) => expect(v).toBeCloseTo(x0[k], 5));
  });

  it('timesteps in (0, 1]', () => {
    const s = new IPNDMScheduler({ num_train_timesteps: 1000 });
    s.setTimesteps(10);
    const want = [1.0, 0.8588707447052002, 0.7195241451263428, 0.583897590637207, 0.45424884557724, 0.3333333432674408, 0.22457554936408997, 0.1321592777967453, 0.06088455021381378, 0.01558075100183487];
    s.timesteps.forEach((t, i) => expect(Math.abs(t - want[i])).toBeLessThan(2e-7));
  });

  it('the schedule run twice with the step index reset (ets kept)', () => {
    const s = new IPNDMScheduler({ num_train_timesteps: 1000 });
    s.setTimesteps(10);
    let x: Float32Array = dummySampleDeter();
    for (const t of s.timesteps) x = s.step(dummyModel(x, t), t, x).prevSample;
    s.stepIndex = null;
    for (const t of s.timesteps) x = s.step(dummyModel(x, t), t, x).prevSample;
    const { sum, mean } = absStats(x);
    expect(Math.abs(mean - 2540529)).toBeLessThan(10);
    expect(close(sum, 1951126272.0, 1e-5)).toBe(true);
  });
});

describe('LCMScheduler (test_scheduler_lcm.py)', () => {
  const L = { num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', prediction_type: 'epsilon' };
  const run = (n: number) => {
    const s = createScheduler('LCMScheduler', L);
    const g = createTorchGenerator(0);
    s.setTimesteps(n);
    let x: Float32Array = dummySampleDeter();
    for (const t of s.timesteps) x = s.step(dummyModel(x, t), t, x, g).prevSample;
    return { s, x };
  };
  it('one step', () => check(run(1).x, [18.7097, 0.0244, 1e-3, 1e-3], [18.709678649902344, 0.024361560121178627]));
  it('ten steps', () => check(run(10).x, [197.7616, 0.2575, 1e-3, 1e-3], [197.7616424560547, 0.25750213861465454]));
  it('timesteps come from the 50 distillation steps', () => {
    expect(run(10).s.timesteps).toEqual([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
    expect(run(4).s.timesteps).toEqual([999, 759, 499, 259]);
  });
});
