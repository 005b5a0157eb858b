/**
 * The denoising loop's math with stand-in models: guidance, scaling factor, strength -> timesteps,
 * add_noise at the first run timestep, and the order in which seeded noise is drawn.
 */
import { describe, expect, it } from 'vitest';
import { combineGuidance, runImg2Img, sampleLatentDistribution, JobCancelled, type DiffusionModels } from '../../src/engine/pipeline.ts';
import { createScheduler, getImg2ImgTimesteps } from '../../src/engine/schedulers/index.ts';
import type { HostTensor } from '../../src/engine/runtime.ts';
import type { SchedulerRng } from '../../src/engine/schedulers/types.ts';

const SD15 = {
  num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear',
  steps_offset: 1, timestep_spacing: 'leading', prediction_type: 'epsilon',
};

/** A recording stand-in: identity-like VAE (4 latent channels = first 3 image channels + 0), UNet from a function. */
function fakeModels(eps: (sample: Float32Array, t: number) => Float32Array, encoderChannels = 4) {
  const calls: { batch: number; t: number }[] = [];
  const models: DiffusionModels = {
    scalingFactor: 0.5,
    latentChannels: 4,
    async encodeText(ids) {
      return { data: new Float32Array(ids.length * 77 * 2).fill(1), dims: [ids.length, 77, 2] };
    },
    async predictNoise(sample, t) {
      calls.push({ batch: sample.dims[0], t });
      return eps(sample.data as Float32Array, t);
    },
    async encodeImage(image) {
      const [, , h, w] = image.dims;
      const out = new Float32Array(encoderChannels * h * w);
      out.set((image.data as Float32Array).subarray(0, 3 * h * w)); // "latent" = the image itself
      return { data: out, dims: [1, encoderChannels, h, w] };
    },
    async decodeLatents(latents: HostTensor) {
      const [, , h, w] = latents.dims;
      return { data: (latents.data as Float32Array).slice(0, 3 * h * w), dims: [1, 3, h, w] };
    },
  };
  return { models, calls };
}

/** Deterministic rng that records how many values each call drew. */
function recordingRng(): SchedulerRng & { draws: number[] } {
  let k = 0;
  const draws: number[] = [];
  return {
    draws,
    randn(n) {
      draws.push(n);
      return Float32Array.from({ length: n }, () => Math.sin(++k * 12.9898) * 0.5);
    },
  };
}

const W = 4;
const H = 4;
const image = Float32Array.from({ length: 3 * W * H }, (_, i) => (i % 7) / 7 - 0.5);
const params = (rng: SchedulerRng, overrides: Record<string, unknown> = {}) => ({
  condIds: new Int32Array(77), uncondIds: new Int32Array(77), image, width: W, height: H, steps: 10, strength: 0.5,
  guidanceScale: 7.5, schedulerName: 'EulerDiscreteScheduler', schedulerConfig: SD15, rng, ...overrides,
});

describe('pipeline', () => {
  it('combines guidance as uncond + g * (cond - uncond)', () => {
    const pred = Float32Array.from([1, 2, 3, 5, 7, 11]);
    expect(Array.from(combineGuidance(pred, 2))).toEqual([1 + 2 * 4, 2 + 2 * 5, 3 + 2 * 8]);
  });

  it('samples a latent distribution as mean + exp(logvar / 2) * noise, clamping logvar', () => {
    const params = Float32Array.from([1, 2, Math.log(4), 100]);
    const out = sampleLatentDistribution(params, 1, { randn: (n) => new Float32Array(n).fill(1) });
    expect(out[0]).toBeCloseTo(1 + 2, 6);
    expect(out[1]).toBeCloseTo(2 + Math.exp(10), 1);
  });

  it('runs int(N * strength) steps from the right timestep, one batch-2 UNet call each under guidance', async () => {
    const { models, calls } = fakeModels((s) => new Float32Array(s.length));
    await runImg2Img(models, params(recordingRng()));
    const expected = getImg2ImgTimesteps(createScheduler('EulerDiscreteScheduler', SD15), 10, 0.5).timesteps;
    expect(calls.map((c) => c.t)).toEqual(expected);
    expect(expected).toHaveLength(5);
    expect(calls.every((c) => c.batch === 2)).toBe(true);
  });

  it('makes batch-1 calls when guidance_scale <= 1', async () => {
    const { models, calls } = fakeModels((s) => new Float32Array(s.length));
    await runImg2Img(models, params(recordingRng(), { guidanceScale: 1 }));
    expect(calls.every((c) => c.batch === 1)).toBe(true);
  });

  it('scales image latents by the scaling factor and noises them at the first run timestep (zero-noise model)', async () => {
    // With eps = 0, Euler keeps the sample: output latents = x0 * sf + sigma_start * noise; decode divides by sf.
    const { models } = fakeModels((s) => new Float32Array(s.length));
    const rng = recordingRng();
    const out = await runImg2Img(models, params(rng));
    const scheduler = createScheduler('EulerDiscreteScheduler', SD15);
    const { timesteps } = getImg2ImgTimesteps(scheduler, 10, 0.5);
    const sigmaStart = scheduler.sigmas![10 - timesteps.length];
    const noise = recordingRng().randn(4 * W * H);
    for (let i = 0; i < 3 * W * H; i++) {
      const expected = (image[i] * 0.5 + sigmaStart * noise[i]) / 0.5;
      expect(out.data[i]).toBeCloseTo(expected, 4);
    }
    expect(rng.draws).toEqual([4 * W * H]);
  });

  it('draws the encoder sample noise before the initial noise when the encoder gives mean and logvar', async () => {
    const { models } = fakeModels((s) => new Float32Array(s.length), 8);
    const rng = recordingRng();
    await runImg2Img(models, params(rng));
    expect(rng.draws).toEqual([4 * W * H, 4 * W * H]);
  });

  it('stops before the next step when asked', async () => {
    const { models, calls } = fakeModels((s) => new Float32Array(s.length));
    let n = 0;
    await expect(runImg2Img(models, params(recordingRng()), { onStep: () => { n++; }, shouldStop: () => n >= 2 })).rejects.toThrow(JobCancelled);
    expect(calls).toHaveLength(2);
  });
});
