/**
 * diffusers' IPNDMScheduler: the improved pseudo-numerical (4th-order Adams–Bashforth) sampler
 * of continuous-time models. Its timesteps lie in (0, 1], as in diffusers, which is not the
 * 0..999 range an SD UNet was trained on.
 */
import {
  SchedulerConfigError,
  StepIndex,
  f32,
  indexForTimestep,
  requirePositiveInt,
  resolveConfig,
  torchLinspaceF32,
} from './common.ts';
import { adamsBashforth } from './pndm.ts';
import type { Scheduler, SchedulerConfig, StepResult } from './types.ts';

const DEFAULTS = {
  num_train_timesteps: 1000,
  trained_betas: null as number[] | null,
};
export type IPNDMConfig = typeof DEFAULTS;

const PI_F32 = f32(Math.PI);

export class IPNDMScheduler implements Scheduler {
  readonly name = 'IPNDMScheduler';
  readonly config: IPNDMConfig;
  readonly order = 1;
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];
  private readonly idx = new StepIndex();
  private betas: number[] = [];
  private alphas: number[] = [];
  private ets: Float32Array[] = [];
  private numInferenceSteps: number | null = null;

  /** diffusers' _step_index; null until the first step (tests reset it to rerun a schedule). */
  get stepIndex(): number | null {
    return this.idx.index;
  }

  set stepIndex(i: number | null) {
    this.idx.index = i;
  }

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(DEFAULTS, config);
    this.setTimesteps(this.config.num_train_timesteps);
    this.numInferenceSteps = null;
  }

  setTimesteps(numInferenceSteps: number): void {
    requirePositiveInt(numInferenceSteps, 'num_inference_steps');
    this.numInferenceSteps = numInferenceSteps;
    const steps = [...Array.from(torchLinspaceF32(1, 0, numInferenceSteps + 1)).slice(0, -1), 0];
    const trained = this.config.trained_betas;
    this.betas = trained
      ? trained.map(f32)
      : steps.map((s) => {
          const v = f32(Math.sin(f32(f32(s * PI_F32) / 2)));
          return f32(v * v);
        });
    this.alphas = this.betas.map((b) => f32(Math.sqrt(f32(1 - f32(b * b)))));
    this.timesteps = this.betas
      .slice(0, -1)
      .map((b, i) => f32(f32(f32(Math.atan2(b, this.alphas[i])) / PI_F32) * 2));
    this.ets = [];
    this.idx.reset();
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    if (this.numInferenceSteps === null) throw new SchedulerConfigError('IPNDMScheduler: call setTimesteps before step');
    const i = this.idx.current(this.timesteps, t);
    const n = sample.length;
    const beta = this.betas[i];
    const alpha = this.alphas[i];
    const e = new Float32Array(n);
    for (let k = 0; k < n; k++) e[k] = f32(sample[k] * beta) + f32(modelOutput[k] * alpha);
    this.ets.push(e);
    // only the last four enter the 4th-order formula
    if (this.ets.length > 4) this.ets.shift();
    const ets = adamsBashforth(this.ets);
    const nextAlpha = this.alphas[i + 1];
    const nextSigma = this.betas[i + 1];
    const denom = Math.max(alpha, 1e-8);
    const prev = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      const pred = f32(f32(sample[k] - f32(beta * ets[k])) / denom);
      prev[k] = f32(nextAlpha * pred) + f32(ets[k] * nextSigma);
    }
    this.idx.index = i + 1;
    return { prevSample: prev };
  }

  /**
   * diffusers' IPNDM has no add_noise. Ours uses the scheduler's own parameterisation, the one its
   * step inverts (x = alpha * x0 + sigma * eps with alpha = cos, sigma = sin of t * pi / 2), at the
   * begin index, so that img2img and inpainting can start from a noised image.
   */
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    if (this.numInferenceSteps === null) throw new SchedulerConfigError('IPNDMScheduler: call setTimesteps before addNoise');
    const i = this.idx.begin ?? indexForTimestep(this.timesteps, t);
    const alpha = this.alphas[i];
    const sigma = this.betas[i];
    const out = new Float32Array(original.length);
    for (let k = 0; k < out.length; k++) out[k] = f32(alpha * original[k]) + f32(sigma * noise[k]);
    return out;
  }

  setBeginIndex(i: number): void {
    this.idx.begin = i;
  }
}
