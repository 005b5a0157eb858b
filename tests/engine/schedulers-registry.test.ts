import { describe, expect, it } from 'vitest';
import {
  createScheduler,
  getImg2ImgTimesteps,
  isSupportedScheduler,
  SCHEDULER_NAMES,
  SchedulerConfigError,
  supportedSchedulerNames,
} from '../../src/engine/schedulers/index.ts';
import type { Scheduler } from '../../src/engine/schedulers/types.ts';
import { createTorchGenerator } from '../../src/engine/random.ts';
import { absStats, close, dummyNoiseDeter, dummySampleDeter, halfModel, SD15 } from './schedulers-fixtures.ts';

describe('registry', () => {
  it('lists the 18 API names', () => {
    expect(SCHEDULER_NAMES).toHaveLength(18);
    expect(new Set(SCHEDULER_NAMES).size).toBe(18);
  });

  it('creates every supported scheduler from the SD 1.5 config', () => {
    for (const name of supportedSchedulerNames()) {
      const s = createScheduler(name, SD15);
      expect(s.name).toBe(name);
      s.setTimesteps(20);
      expect(s.timesteps.length).toBeGreaterThanOrEqual(20);
    }
  });

  it('applies from_config semantics: the model config wins for known keys, others are dropped', () => {
    const s = createScheduler('EulerDiscreteScheduler', { ...SD15, timestep_spacing: 'leading', use_karras_sigmas: 'no' });
    expect(s.config.beta_schedule).toBe('scaled_linear');
    expect(s.config.use_karras_sigmas).toBe(false);
    expect(s.config).not.toHaveProperty('skip_prk_steps');
    expect(s.config).not.toHaveProperty('_class_name');
  });

  it('rejects unknown names and the three non-sampling schedulers with a message listing the supported ones', () => {
    for (const name of ['Foo', 'DDIMInverseScheduler', 'KarrasVeScheduler', 'ScoreSdeVeScheduler']) {
      expect(isSupportedScheduler(name)).toBe(false);
      expect(() => createScheduler(name, SD15)).toThrow(SchedulerConfigError);
      expect(() => createScheduler(name, SD15)).toThrow(/Supported schedulers: .*EulerDiscreteScheduler/);
    }
  });

  it('names the API knows but the engine lacks throw "not implemented yet"', () => {
    for (const name of SCHEDULER_NAMES) {
      if (isSupportedScheduler(name)) continue;
      expect(() => createScheduler(name)).toThrow(SchedulerConfigError);
    }
  });

  it('supports the schedulers of this module; the multistep solvers are registered elsewhere', () => {
    const mine = [
      'DDPMScheduler',
      'DDIMScheduler',
      'PNDMScheduler',
      'LMSDiscreteScheduler',
      'EulerDiscreteScheduler',
      'EulerAncestralDiscreteScheduler',
      'HeunDiscreteScheduler',
      'KDPM2DiscreteScheduler',
      'KDPM2AncestralDiscreteScheduler',
      'IPNDMScheduler',
      'LCMScheduler',
    ];
    for (const name of mine) expect(isSupportedScheduler(name)).toBe(true);
  });
});

describe('getImg2ImgTimesteps (diffusers StableDiffusionImg2ImgPipeline.get_timesteps)', () => {
  it('order 1: the seed example, 30 steps at strength 0.7', () => {
    const s = createScheduler('EulerDiscreteScheduler', { ...SD15, timestep_spacing: 'leading' });
    const { timesteps, latentTimestep } = getImg2ImgTimesteps(s, 30, 0.7);
    // init_timestep = int(30 * 0.7) = 21, t_start = 9
    expect(timesteps).toHaveLength(21);
    expect(timesteps).toEqual(s.timesteps.slice(9));
    expect(latentTimestep).toBe(661);
    // addNoise uses the begin index, not the timestep lookup
    const noisy = s.addNoise(new Float32Array([0]), new Float32Array([1]), latentTimestep);
    expect(noisy[0]).toBe(s.sigmas![9]);
  });

  it('order 1, DDIM: strength 1 keeps the whole schedule', () => {
    const s = createScheduler('DDIMScheduler', SD15);
    const { timesteps, latentTimestep } = getImg2ImgTimesteps(s, 20, 1);
    expect(timesteps).toEqual(s.timesteps);
    expect(latentTimestep).toBe(951);
  });

  it('order 2 (Heun): the slice starts at t_start · order and the begin index follows', () => {
    const s = createScheduler('HeunDiscreteScheduler', { ...SD15, timestep_spacing: 'leading' });
    const { timesteps, latentTimestep } = getImg2ImgTimesteps(s, 30, 0.7);
    expect(s.timesteps).toHaveLength(59);
    expect(timesteps).toEqual(s.timesteps.slice(18));
    expect(timesteps).toHaveLength(41);
    expect(latentTimestep).toBe(661);
    expect(s.addNoise(new Float32Array([0]), new Float32Array([1]), latentTimestep)[0]).toBe(s.sigmas![18]);
  });

  it('img2img loops match diffusers (Euler, Heun, KDPM2 ancestral)', () => {
    // diffusers' StableDiffusionImg2ImgPipeline order of calls, with a stand-in UNet 0.5·x + 0.1·t/1000
    const run = (s: Scheduler, steps: number, strength: number) => {
      const { timesteps, latentTimestep } = getImg2ImgTimesteps(s, steps, strength);
      let x = s.addNoise(dummySampleDeter(), dummyNoiseDeter(), latentTimestep);
      const rng = createTorchGenerator(0);
      for (const t of timesteps) x = s.step(halfModel(s.scaleModelInput(x, t), t), t, x, rng).prevSample;
      return absStats(x);
    };
    const cfg = { ...SD15, timestep_spacing: 'leading' };
    const cases: [string, number, number, number][] = [
      ['EulerDiscreteScheduler', 30, 0.7, 562.7999877929688],
      ['HeunDiscreteScheduler', 30, 0.7, 562.69580078125],
      ['KDPM2AncestralDiscreteScheduler', 10, 0.5, 452.2185974121094],
    ];
    for (const [name, steps, strength, sum] of cases) {
      expect(close(run(createScheduler(name, cfg), steps, strength).sum, sum, 1e-5), name).toBe(true);
    }
  });

  it('throws when strength × steps leaves no step', () => {
    const s = createScheduler('DDIMScheduler', SD15);
    expect(() => getImg2ImgTimesteps(s, 4, 0.2)).toThrow(SchedulerConfigError);
    expect(() => getImg2ImgTimesteps(s, 4, 0.2)).toThrow(/at least 1/);
    expect(() => getImg2ImgTimesteps(s, 10, 0)).toThrow(SchedulerConfigError);
    expect(getImg2ImgTimesteps(s, 4, 0.25).timesteps).toEqual([1]);
  });
});
