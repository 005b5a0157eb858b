/**
 * diffusers' KDPM2AncestralDiscreteScheduler ("DPM2 a"): DPM2 towards σ_down, then fresh noise
 * of σ_up after each second half-step. N steps call the model 2N − 1 times.
 */
import {
  SchedulerConfigError,
  StepIndex,
  addSigmaNoise,
  alphasCumprod,
  f32,
  initNoiseSigmaFor,
  makeBetas,
  predictX0FromSigma,
  requirePositiveInt,
  resolveConfig,
  scaleBySigma,
  sigmaToT,
  trainingSigmas,
} from './common.ts';
import { expandPairs, kdpm2BaseSchedule, logMidpoint, type KDPM2DiscreteConfig } from './kdpm2-discrete.ts';
import type { Scheduler, SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

const DEFAULTS: KDPM2DiscreteConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'linear',
  trained_betas: null,
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
};

export class KDPM2AncestralDiscreteScheduler implements Scheduler {
  readonly name = 'KDPM2AncestralDiscreteScheduler';
  readonly config: KDPM2DiscreteConfig;
  readonly order = 2;
  timesteps: number[] = [];
  sigmas: number[] = [];
  sigmasInterpol: number[] = [];
  private sigmasUp: number[] = [];
  private sigmasDown: number[] = [];
  private readonly trainSigmas: Float64Array;
  private readonly idx = new StepIndex();
  private saved: Float32Array | null = null;

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(DEFAULTS, config);
    this.trainSigmas = trainingSigmas(alphasCumprod(makeBetas(this.config)));
    this.setTimesteps(this.config.num_train_timesteps);
  }

  get initNoiseSigma(): number {
    return initNoiseSigmaFor(this.config.timestep_spacing, this.sigmas);
  }

  setTimesteps(numInferenceSteps: number): void {
    requirePositiveInt(numInferenceSteps, 'num_inference_steps');
    const { timesteps, sigmas, logSigmas, karras } = kdpm2BaseSchedule(this.config, this.trainSigmas, numInferenceSteps);
    const n = sigmas.length;
    const up: number[] = [];
    const down: number[] = [];
    for (let i = 0; i < n; i++) {
      const s2 = f32(sigmas[i] * sigmas[i]);
      const next = i + 1 < n ? sigmas[i + 1] : 0;
      const n2 = f32(next * next);
      // at the final σ = 0 this is 0/0 = NaN, as in diffusers; it is never used
      up.push(f32(Math.sqrt(f32(f32(n2 * f32(s2 - n2)) / s2))));
      down.push(i === n - 1 ? 0 : f32(Math.sqrt(f32(n2 - f32(up[i] * up[i])))));
    }
    const interpol = sigmas.map((s, i) => (i >= n - 2 ? 0 : logMidpoint(s, down[i])));
    const tInterpol = interpol.map((s) => {
      const t = sigmaToT(s, logSigmas, true);
      return karras ? t : f32(t);
    });
    this.sigmas = expandPairs(sigmas);
    this.sigmasInterpol = expandPairs(interpol);
    this.sigmasUp = expandPairs(up);
    this.sigmasDown = expandPairs(down);
    const ts = [timesteps[0]];
    for (let i = 1; i < timesteps.length; i++) ts.push(tInterpol[i - 1], timesteps[i]);
    this.timesteps = ts;
    this.saved = null;
    this.idx.reset();
  }

  scaleModelInput(sample: Float32Array, t: number): Float32Array {
    const i = this.idx.current(this.timesteps, t);
    return scaleBySigma(sample, this.saved === null ? this.sigmas[i] : this.sigmasInterpol[i - 1]);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    const i = this.idx.current(this.timesteps, t);
    const n = sample.length;
    const prev = new Float32Array(n);
    let x0: Float32Array;
    if (this.saved === null) {
      const sigma = this.sigmas[i];
      const sigmaInterpol = this.sigmasInterpol[i];
      x0 = predictX0FromSigma(this.config.prediction_type, modelOutput, sample, sigma);
      const dt = f32(sigmaInterpol - sigma);
      for (let k = 0; k < n; k++) prev[k] = sample[k] + f32(f32(f32(sample[k] - x0[k]) / sigma) * dt);
      this.saved = sample;
    } else {
      if (!rng) throw new SchedulerConfigError('KDPM2AncestralDiscreteScheduler needs a random source');
      const sigma = this.sigmas[i - 1];
      const sigmaInterpol = this.sigmasInterpol[i - 1];
      const sigmaUp = this.sigmasUp[i - 1];
      const dt = f32(this.sigmasDown[i - 1] - sigma);
      x0 = predictX0FromSigma(this.config.prediction_type, modelOutput, sample, sigmaInterpol);
      const base = this.saved;
      const noise = rng.randn(n);
      for (let k = 0; k < n; k++) {
        const p = base[k] + f32(f32(f32(sample[k] - x0[k]) / sigmaInterpol) * dt);
        prev[k] = f32(p) + f32(noise[k] * sigmaUp);
      }
      this.saved = null;
    }
    this.idx.index = i + 1;
    return { prevSample: prev, predOriginalSample: x0 };
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addSigmaNoise(original, noise, this.sigmas[this.idx.forNoise(this.timesteps, t)]);
  }

  setBeginIndex(i: number): void {
    this.idx.begin = i;
  }
}
