import { describe, expect, it } from 'vitest';
import { EulerDiscreteScheduler } from '../../src/engine/schedulers/euler-discrete.ts';
import { absStats, close, DIFFUSERS_TEST_BETAS, fullLoop } from './schedulers-fixtures.ts';

// diffusers tests/schedulers/test_scheduler_euler.py: config, 10 steps, expected |x| sum and mean.
// Besides those values, `ref` is the same loop through diffusers' own code on CPU torch with torch
// 2.x's linspace, printed to float32 precision, which the port must match to 1e-5 relative.
const CONFIG = { ...DIFFUSERS_TEST_BETAS, num_train_timesteps: 1100 };

describe('EulerDiscreteScheduler full loops (diffusers test_scheduler_euler.py)', () => {
  it('no noise', () => {
    const { sum, mean } = absStats(fullLoop(new EulerDiscreteScheduler(CONFIG), { steps: 10 }));
    expect(close(sum, 10.0807, 0, 1e-4)).toBe(true);
    expect(close(mean, 0.0131, 0, 1e-4)).toBe(true);
    expect(close(sum, 10.080682754516602, 1e-5)).toBe(true);
    expect(close(mean, 0.013125889003276825, 1e-5)).toBe(true);
  });

  it('v_prediction (the loop cancels to ~0, so compare absolutely)', () => {
    const s = new EulerDiscreteScheduler({ ...CONFIG, prediction_type: 'v_prediction' });
    const { sum, mean } = absStats(fullLoop(s, { steps: 10 }));
    expect(Math.abs(sum - 0.0002)).toBeLessThan(1e-2);
    expect(Math.abs(mean - 2.2676e-6)).toBeLessThan(1e-3);
    expect(close(sum, 2.4181501245834625e-10, 1e-5)).toBe(true);
  });

  it('karras sigmas', () => {
    const s = new EulerDiscreteScheduler({ ...CONFIG, use_karras_sigmas: true });
    const { sum, mean } = absStats(fullLoop(s, { steps: 10 }));
    expect(Math.abs(sum - 124.52299499511719)).toBeLessThan(1e-2);
    expect(Math.abs(mean - 0.16213932633399963)).toBeLessThan(1e-3);
    expect(close(sum, 124.5225830078125, 1e-5)).toBe(true);
    expect(close(mean, 0.16213877499103546, 1e-5)).toBe(true);
  });

  it('with noise from step 8 (add_noise)', () => {
    const { sum, mean } = absStats(fullLoop(new EulerDiscreteScheduler(CONFIG), { steps: 10, tStart: 8 }));
    expect(Math.abs(sum - 57062.9297)).toBeLessThan(1e-2);
    expect(Math.abs(mean - 74.3007)).toBeLessThan(1e-3);
    expect(close(sum, 57062.9296875, 1e-5)).toBe(true);
    expect(close(mean, 74.30068969726562, 1e-5)).toBe(true);
  });
});

describe('EulerDiscreteScheduler behaviour', () => {
  it('repeats no timestep, has one more sigma than timesteps, ends at zero', () => {
    const s = new EulerDiscreteScheduler(CONFIG);
    s.setTimesteps(10);
    expect(s.timesteps).toHaveLength(10);
    expect(s.sigmas).toHaveLength(11);
    expect(s.sigmas[10]).toBe(0);
  });

  it('final_sigmas_type sigma_min ends at the smallest training sigma', () => {
    const s = new EulerDiscreteScheduler({ ...CONFIG, final_sigmas_type: 'sigma_min' });
    s.setTimesteps(10);
    expect(s.sigmas[10]).toBeGreaterThan(0);
    expect(s.sigmas[10]).toBeLessThan(0.02);
  });

  it('setBeginIndex drives scaleModelInput and addNoise', () => {
    const s = new EulerDiscreteScheduler(CONFIG);
    s.setTimesteps(10);
    s.setBeginIndex(3);
    const x = new Float32Array([1]);
    expect(s.addNoise(new Float32Array([0]), x, s.timesteps[0])[0]).toBe(s.sigmas[3]);
    const scaled = s.scaleModelInput(x, s.timesteps[3])[0];
    expect(scaled).toBe(Math.fround(1 / Math.fround(Math.sqrt(Math.fround(Math.fround(s.sigmas[3] ** 2) + 1)))));
  });
});
