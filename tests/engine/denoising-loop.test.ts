/**
 * The denoising loop's math with stand-in models: guidance, scaling factor, strength -> timesteps,
 * the start latents of each mode, the inpainting blend and 9-channel input, and the order in which
 * seeded noise is drawn (diffusers': image latents' sample, noise, masked-image latents' sample).
 */
import { describe, expect, it } from 'vitest';
import {
  combineGuidance,
  runPipeline,
  sampleLatentDistribution,
  JobCancelled,
  type DiffusionModels,
  type GenerationInput,
  type PipelineParams,
} from '../../src/engine/pipelines/denoising-loop.ts';
import { binariseMask, blendKnownLatents, maskImage, resizeMaskNearest } from '../../src/engine/inpaint-mask.ts';
import { createScheduler, getImg2ImgTimesteps, supportedSchedulerNames } from '../../src/engine/schedulers/index.ts';
import type { HostTensor } from '../../src/engine/runtime.ts';
import type { SchedulerRng } from '../../src/engine/schedulers/types.ts';

const SD15 = {
  num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear',
  steps_offset: 1, timestep_spacing: 'leading', prediction_type: 'epsilon',
};

interface Call {
  batch: number;
  channels: number;
  t: number;
  sample: Float32Array;
}

/**
 * A recording stand-in: the "VAE" keeps the resolution (vaeScaleFactor 1) and its latent is the
 * image's 3 channels plus a zero channel (with `encoderChannels` 8, a zero logvar follows the mean);
 * the UNet's noise prediction comes from `eps`.
 */
function fakeModels(eps: (sample: Float32Array, t: number) => Float32Array, encoderChannels = 4, unetInChannels = 4) {
  const calls: Call[] = [];
  const models: DiffusionModels = {
    scalingFactor: 0.5,
    latentChannels: 4,
    vaeScaleFactor: 1,
    unetInChannels,
    async predictNoise(sample, t) {
      const [batch, channels, h, w] = sample.dims;
      const data = sample.data as Float32Array;
      calls.push({ batch, channels, t, sample: data.slice() });
      // the prediction has the latent channels only, whatever the UNet's input had
      const latentsOnly = new Float32Array(batch * 4 * h * w);
      for (let b = 0; b < batch; b++) latentsOnly.set(data.subarray(b * channels * h * w, (b * channels + 4) * h * w), b * 4 * h * w);
      return eps(latentsOnly, t);
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

const zeroEps = (s: Float32Array) => new Float32Array(s.length);

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
const PLANE = W * H;
const image = Float32Array.from({ length: 3 * PLANE }, (_, i) => (i % 7) / 7 - 0.5);
/** Left half (x < 2) repaint, right half keep. */
const leftHalfMask = Float32Array.from({ length: PLANE }, (_, i) => (i % W < 2 ? 1 : 0));

function params(rng: SchedulerRng, input: GenerationInput = { mode: 'img2img', image, strength: 0.5 }, overrides: Partial<PipelineParams> = {}): PipelineParams {
  return {
    conditioning: { encoder_hidden_states: { data: new Float32Array(2 * 77 * 2).fill(1), dims: [2, 77, 2] } }, width: W, height: H, steps: 10,
    guidanceScale: 7.5, schedulerName: 'EulerDiscreteScheduler', schedulerConfig: SD15, rng, input, ...overrides,
  };
}

const inpaint = (strength: number): GenerationInput => ({ mode: 'inpaint', image, mask: leftHalfMask, strength });

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
    const { models, calls } = fakeModels(zeroEps);
    await runPipeline(models, params(recordingRng()));
    const expected = getImg2ImgTimesteps(createScheduler('EulerDiscreteScheduler', SD15), 10, 0.5).timesteps;
    expect(calls.map((c) => c.t)).toEqual(expected);
    expect(expected).toHaveLength(5);
    expect(calls.every((c) => c.batch === 2)).toBe(true);
  });

  it('makes batch-1 calls when guidance_scale <= 1', async () => {
    const { models, calls } = fakeModels(zeroEps);
    await runPipeline(models, params(recordingRng(), undefined, { guidanceScale: 1 }));
    expect(calls.every((c) => c.batch === 1)).toBe(true);
  });

  it('scales image latents by the scaling factor and noises them at the first run timestep (zero-noise model)', async () => {
    // With eps = 0, Euler keeps the sample: output latents = x0 * sf + sigma_start * noise; decode divides by sf.
    const { models } = fakeModels(zeroEps);
    const rng = recordingRng();
    const out = await runPipeline(models, params(rng));
    const scheduler = createScheduler('EulerDiscreteScheduler', SD15);
    const { timesteps } = getImg2ImgTimesteps(scheduler, 10, 0.5);
    const sigmaStart = scheduler.sigmas![10 - timesteps.length];
    const noise = recordingRng().randn(4 * PLANE);
    for (let i = 0; i < 3 * PLANE; i++) {
      const expected = (image[i] * 0.5 + sigmaStart * noise[i]) / 0.5;
      expect(out.data[i]).toBeCloseTo(expected, 4);
    }
    expect(rng.draws).toEqual([4 * PLANE]);
  });

  it('img2img draws the encoder sample noise before the initial noise when the encoder gives mean and logvar', async () => {
    const { models } = fakeModels(zeroEps, 8);
    const rng = recordingRng();
    await runPipeline(models, params(rng));
    expect(rng.draws).toEqual([4 * PLANE, 4 * PLANE]);
  });

  it('stops before the next step when asked', async () => {
    const { models, calls } = fakeModels(zeroEps);
    let n = 0;
    await expect(runPipeline(models, params(recordingRng()), { onStep: () => { n++; }, shouldStop: () => n >= 2 })).rejects.toThrow(JobCancelled);
    expect(calls).toHaveLength(2);
  });
});

describe('text2img', () => {
  it('runs every timestep from seeded noise × init_noise_sigma, drawing once', async () => {
    const { models, calls } = fakeModels(zeroEps, 8);
    const rng = recordingRng();
    const out = await runPipeline(models, params(rng, { mode: 'text2img' }));
    const scheduler = createScheduler('EulerDiscreteScheduler', SD15);
    scheduler.setTimesteps(10);
    expect(calls.map((c) => c.t)).toEqual(scheduler.timesteps);
    // SD 1.5's Euler with leading spacing: sqrt(sigma_max² + 1), sigma_max = sigmas[0] after set_timesteps
    const sigma = Math.fround(Math.sqrt(scheduler.sigmas![0] ** 2 + 1));
    expect(scheduler.initNoiseSigma).toBeCloseTo(sigma, 5);
    // timestep 901 for 10 leading steps: sigma ≈ 8.39, so init_noise_sigma ≈ 8.45 (not 1)
    expect(scheduler.initNoiseSigma).toBeCloseTo(8.45, 2);
    const noise = recordingRng().randn(4 * PLANE);
    // eps = 0 keeps Euler's sample: the decoded image is noise × init_noise_sigma / scaling factor
    for (let i = 0; i < 3 * PLANE; i++) expect(out.data[i]).toBeCloseTo((noise[i] * scheduler.initNoiseSigma) / 0.5, 3);
    // the first UNet input is the scaled start: noise × init_noise_sigma / sqrt(sigma² + 1) = noise
    for (let i = 0; i < 4 * PLANE; i++) expect(calls[0].sample[i]).toBeCloseTo(noise[i], 5);
    // no encoder runs in text2img, so only the noise is drawn
    expect(rng.draws).toEqual([4 * PLANE]);
  });

  it('uses the latent size width / vaeScaleFactor', async () => {
    const { models, calls } = fakeModels(zeroEps);
    const eight = { ...models, vaeScaleFactor: 8 };
    await runPipeline(eight, params(recordingRng(), { mode: 'text2img' }, { width: 64, height: 32, steps: 2 }));
    expect(calls[0].sample.length).toBe(2 * 4 * 4 * 8);
  });

  it('refuses a 9-channel UNet with a clear message', async () => {
    const { models } = fakeModels(zeroEps, 4, 9);
    await expect(runPipeline(models, params(recordingRng(), { mode: 'text2img' }))).rejects.toThrow(/9 input channels/);
  });
});

describe('inpaint mask', () => {
  it('reads the mask as PIL\'s "L" and binarises at 0.5 (L >= 128): white repaints, black keeps', () => {
    // (R, G, B) -> L by PIL 9.4: (255,0,0) 76, (0,255,0) 150, (128,128,128) 128, (127,127,127) 127, (127,128,129) 128
    const px = [[255, 0, 0], [0, 255, 0], [128, 128, 128], [127, 127, 127], [127, 128, 129], [255, 255, 255]];
    const rgba = new Uint8Array(px.flatMap((p) => [...p, 0]));
    expect(Array.from(binariseMask(rgba, 6, 1))).toEqual([0, 1, 1, 0, 1, 1]);
  });

  it('resizes like torch.nn.functional.interpolate(size=...) in nearest mode', () => {
    // torch 1.13: a 16x16 arange -> 2x2 gives [[0, 8], [128, 136]]; a 1x20 arange -> 1x3 gives [0, 6, 13]
    const grid = Float32Array.from({ length: 256 }, (_, i) => i);
    expect(Array.from(resizeMaskNearest(grid, 16, 16, 2, 2))).toEqual([0, 8, 128, 136]);
    const row = Float32Array.from({ length: 20 }, (_, i) => i);
    expect(Array.from(resizeMaskNearest(row, 20, 1, 3, 1))).toEqual([0, 6, 13]);
  });

  it('masks the image as image * (mask < 0.5) and blends (1 - m) * known + m * latents', () => {
    const img = Float32Array.from([0.5, -0.5, 1, -1, 0.25, 0.75]);
    expect(Array.from(maskImage(img, Float32Array.from([1, 0])))).toEqual([0, -0.5, 0, -1, 0, 0.75]);
    const blended = blendKnownLatents(Float32Array.from([1, 2, 3, 4]), Float32Array.from([10, 20, 30, 40]), Float32Array.from([1, 0]));
    expect(Array.from(blended)).toEqual([1, 20, 3, 40]);
  });
});

describe('inpaint with a 4-channel UNet', () => {
  it('keeps the image latents where the mask is black and starts the rest from noise × init_noise_sigma (strength 1)', async () => {
    const { models } = fakeModels(zeroEps);
    const rng = recordingRng();
    const out = await runPipeline(models, params(rng, inpaint(1)));
    const scheduler = createScheduler('EulerDiscreteScheduler', SD15);
    scheduler.setTimesteps(10);
    const noise = recordingRng().randn(4 * PLANE);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < PLANE; i++) {
        const k = c * PLANE + i;
        // kept: un-noised after the last step; repainted: the zero-noise model leaves the start latents
        const expected = leftHalfMask[i] === 0 ? image[k] : (noise[k] * scheduler.initNoiseSigma) / 0.5;
        expect(out.data[k]).toBeCloseTo(expected, 3);
      }
    }
  });

  it('noises the known latents at the next timestep after each step', async () => {
    const { models, calls } = fakeModels(zeroEps);
    await runPipeline(models, params(recordingRng(), inpaint(0.6), { guidanceScale: 1 }));
    const scheduler = createScheduler('EulerDiscreteScheduler', SD15);
    const { timesteps } = getImg2ImgTimesteps(scheduler, 10, 0.6);
    const begin = 10 - timesteps.length;
    // a 4-channel encoder draws nothing, so the noise is the first draw
    const noise = recordingRng().randn(4 * PLANE);
    for (let k = 1; k < timesteps.length; k++) {
      // the UNet's input at step k in the kept region: (x0·sf + σ_k·noise) / sqrt(σ_k² + 1)
      const sigma = scheduler.sigmas![begin + k];
      for (let c = 0; c < 3; c++) {
        for (let i = 0; i < PLANE; i++) {
          if (leftHalfMask[i] !== 0) continue;
          const x = Math.fround(image[c * PLANE + i] * 0.5) + Math.fround(noise[c * PLANE + i] * sigma);
          expect(calls[k].sample[c * PLANE + i]).toBeCloseTo(x / Math.sqrt(sigma * sigma + 1), 5);
        }
      }
    }
  });

  it('draws the image latents sample, the noise, then the (unused) masked-image latents sample', async () => {
    const { models } = fakeModels(zeroEps, 8);
    const rng = recordingRng();
    await runPipeline(models, params(rng, inpaint(0.5)));
    expect(rng.draws).toEqual([4 * PLANE, 4 * PLANE, 4 * PLANE]);
    const plain = recordingRng();
    await runPipeline(fakeModels(zeroEps, 4).models, params(plain, inpaint(1)));
    expect(plain.draws).toEqual([4 * PLANE]);
  });

  it('the blend after a step uses the noise level of diffusers\' step_index rule for every scheduler', () => {
    // diffusers' add_noise after a step uses sigmas[step_index] (alphas_cumprod[t] for DDPM-family):
    // the schedulers' own addNoise after stepping must agree with the pipeline's never-stepped noiser.
    const differing: string[] = [];
    for (const name of supportedSchedulerNames()) {
      const live = createScheduler(name, SD15);
      const { timesteps } = getImg2ImgTimesteps(live, 10, 0.6);
      const begin = live.timesteps.length - timesteps.length;
      const noiser = createScheduler(name, SD15);
      noiser.setTimesteps(10);
      let lat: Float32Array = new Float32Array(4).fill(0.5);
      const one = new Float32Array(4).fill(1);
      for (let i = 0; i < timesteps.length - 1; i++) {
        lat = live.step(new Float32Array(4).fill(0.01), timesteps[i], lat, { randn: (n) => new Float32Array(n).fill(0.1) }).prevSample;
        noiser.setBeginIndex(begin + i + 1);
        if (Math.abs(live.addNoise(one, one, timesteps[i + 1])[0] - noiser.addNoise(one, one, timesteps[i + 1])[0]) > 1e-6) {
          differing.push(name);
          break;
        }
      }
    }
    // IPNDM (no add_noise in diffusers) noises at its begin index whatever the step; the pipeline's
    // noiser avoids that. Every other scheduler follows diffusers' rule.
    expect(differing).toEqual(['IPNDMScheduler']);
  });
});

describe('inpaint with a 9-channel UNet', () => {
  it('feeds [scaled latents, mask, masked-image latents] per batch item and does not blend', async () => {
    const { models, calls } = fakeModels(zeroEps, 4, 9);
    const rng = recordingRng();
    const out = await runPipeline(models, params(rng, inpaint(1)));
    expect(calls.every((c) => c.channels === 9 && c.batch === 2)).toBe(true);
    const masked = maskImage(image, leftHalfMask);
    for (const call of calls) {
      for (let b = 0; b < 2; b++) {
        const item = call.sample.subarray(b * 9 * PLANE, (b + 1) * 9 * PLANE);
        expect(Array.from(item.subarray(4 * PLANE, 5 * PLANE))).toEqual(Array.from(leftHalfMask));
        for (let i = 0; i < 3 * PLANE; i++) expect(item[5 * PLANE + i]).toBeCloseTo(masked[i] * 0.5, 6);
        for (let i = 0; i < PLANE; i++) expect(item[8 * PLANE + i]).toBe(0);
      }
      // both guidance halves see the same latents
      expect(Array.from(call.sample.subarray(0, 4 * PLANE))).toEqual(Array.from(call.sample.subarray(9 * PLANE, 13 * PLANE)));
    }
    // no blend: the zero-noise model leaves the start latents everywhere, kept region included
    const scheduler = createScheduler('EulerDiscreteScheduler', SD15);
    scheduler.setTimesteps(10);
    const noise = recordingRng().randn(4 * PLANE);
    for (let i = 0; i < 3 * PLANE; i++) expect(out.data[i]).toBeCloseTo((noise[i] * scheduler.initNoiseSigma) / 0.5, 3);
  });

  it('encodes the image only below full strength; draws image sample, noise, masked-image sample', async () => {
    const full = recordingRng();
    await runPipeline(fakeModels(zeroEps, 8, 9).models, params(full, inpaint(1)));
    expect(full.draws).toEqual([4 * PLANE, 4 * PLANE]);
    const partial = recordingRng();
    await runPipeline(fakeModels(zeroEps, 8, 9).models, params(partial, inpaint(0.5)));
    expect(partial.draws).toEqual([4 * PLANE, 4 * PLANE, 4 * PLANE]);
  });

  it('rejects UNets of other channel counts', async () => {
    await expect(runPipeline(fakeModels(zeroEps, 4, 7).models, params(recordingRng(), inpaint(1)))).rejects.toThrow(/7 input channels/);
  });
});
