/**
 * The GPU-resident loop runs a scheduler's step as weights of (sample, ε, noise) in a helper graph.
 * Those weights, applied on the host, must give what step() gives, with the same rng draws, over
 * whole schedules; configurations that are not linear must say why.
 */
import { describe, expect, it } from 'vitest';
import { createScheduler, type Scheduler } from '../../src/engine/schedulers/index.ts';
import { createTorchGenerator } from '../../src/engine/random.ts';
import { SD15 } from './schedulers-fixtures.ts';

const N = 4 * 8 * 8;

function applyLinear(s: Scheduler, t: number, sample: Float32Array, eps: Float32Array, seed: { rng: ReturnType<typeof createTorchGenerator> }): Float32Array {
  const w = s.linearStep!(t, sample.length, seed.rng);
  const out = new Float32Array(sample.length);
  for (let i = 0; i < out.length; i++) out[i] = w.sample * sample[i] + w.output * eps[i] + (w.noiseData ? w.noise * w.noiseData[i] : 0);
  return out;
}

/** Runs `steps` steps both ways from the same noise, feeding each its own samples; returns the worst relative gap. */
function worstGap(name: string, config: Record<string, unknown>, steps: number, setup?: (s: Scheduler) => void): number {
  const host = createScheduler(name, config);
  const linear = createScheduler(name, config);
  for (const s of [host, linear]) {
    setup?.(s);
    s.setTimesteps(steps);
  }
  const data = createTorchGenerator(7);
  const hostRng = { rng: createTorchGenerator(11) };
  const linRng = { rng: createTorchGenerator(11) };
  let a: Float32Array = data.randn(N).map((v) => v * host.initNoiseSigma);
  let b: Float32Array = a.slice();
  let worst = 0;
  for (const t of host.timesteps) {
    const eps = data.randn(N);
    a = host.step(eps, t, a, hostRng.rng).prevSample;
    b = applyLinear(linear, t, b, eps, linRng);
    const scale = Math.max(...a.map(Math.abs));
    for (let i = 0; i < N; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  }
  return worst;
}

describe('linear scheduler steps (the GPU loop\'s latent-step weights)', () => {
  const sd = { ...SD15, clip_sample: false };
  it.each([
    ['EulerDiscreteScheduler', {}, 20],
    ['EulerDiscreteScheduler', { use_karras_sigmas: true }, 25],
    ['EulerAncestralDiscreteScheduler', {}, 20],
    ['DDIMScheduler', {}, 50],
    ['LCMScheduler', {}, 4],
  ])('%s %j: same latents as step() over %i steps', (name, extra, steps) => {
    expect(worstGap(name, { ...sd, ...extra }, steps)).toBeLessThan(2e-5);
  });

  it('DDIM with eta > 0 draws its noise as step() does', () => {
    expect(worstGap('DDIMScheduler', sd, 20, (s) => ((s as unknown as { eta: number }).eta = 0.7))).toBeLessThan(2e-5);
  });

  it('says why a configuration is not linear', () => {
    expect(createScheduler('EulerDiscreteScheduler', { ...sd, prediction_type: 'v_prediction' }).linearStepUnsupported!()).toMatch(/epsilon/);
    expect(createScheduler('DDIMScheduler', { ...sd, clip_sample: true }).linearStepUnsupported!()).toMatch(/clip_sample/);
    expect(createScheduler('EulerAncestralDiscreteScheduler', sd).linearStepUnsupported!()).toBeNull();
    // multistep schedulers keep a history of outputs: they run on the host
    expect(createScheduler('DPMSolverMultistepScheduler', sd).linearStep).toBeUndefined();
  });
});
