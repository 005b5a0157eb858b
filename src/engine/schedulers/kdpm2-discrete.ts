/**
 * diffusers' KDPM2DiscreteScheduler (k-diffusion's DPM-Solver-2 / "DPM2"): order 2; each step
 * evaluates the model at σ and at the geometric midpoint of σ and the next σ, so N steps call
 * the model 2N − 1 times.
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
  sigmaSchedule,
  sigmaToT,
  trainingSigmas,
} from './common.ts';
import type { Scheduler, SchedulerConfig, StepResult } from './types.ts';

const DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
};
export type KDPM2DiscreteConfig = typeof DEFAULTS;

/** exp(torch.lerp(log a, log b, 0.5)) in float32: the geometric midpoint, 0 when b is 0. */
export function logMidpoint(a: number, b: number): number {
  const la = f32(Math.log(a));
  const lb = f32(Math.log(b));
  // torch.lerp with weight 0.5 takes the `end - (end - self) * (1 - w)` branch
  return f32(Math.exp(f32(lb - f32(f32(lb - la) * 0.5))));
}

/** [a0, a1, a1, ..., aN, aN, aN]: diffusers' cat([a[:1], a[1:].repeat_interleave(2), a[-1:]]). */
export function expandPairs(a: readonly number[]): number[] {
  const out = [a[0]];
  for (let i = 1; i < a.length; i++) out.push(a[i], a[i]);
  out.push(a[a.length - 1]);
  return out;
}

/** Shared with KDPM2Ancestral: the spaced sigmas and their timesteps, before interleaving. */
export function kdpm2BaseSchedule(
  c: KDPM2DiscreteConfig,
  trainSigmas: Float64Array,
  steps: number,
): { timesteps: number[]; sigmas: number[]; logSigmas: Float64Array; karras: boolean } {
  if (c.prediction_type === 'sample') throw new SchedulerConfigError('KDPM2 schedulers do not support prediction_type "sample"');
  const r = sigmaSchedule({
    spacing: c.timestep_spacing,
    numTrain: c.num_train_timesteps,
    steps,
    stepsOffset: c.steps_offset,
    trainSigmas,
    useKarras: c.use_karras_sigmas,
    useExponential: c.use_exponential_sigmas,
    useBeta: c.use_beta_sigmas,
    roundKarrasTimesteps: true,
  });
  return { ...r, karras: c.use_karras_sigmas };
}

export class KDPM2DiscreteScheduler implements Scheduler {
  readonly name = 'KDPM2DiscreteScheduler';
  readonly config: KDPM2DiscreteConfig;
  readonly order = 2;
  timesteps: number[] = [];
  sigmas: number[] = [];
  /** Midpoint sigmas, laid out like `sigmas`. */
  sigmasInterpol: number[] = [];
  private readonly trainSigmas: Float64Array;
  private readonly idx = new StepIndex();
  /** The sample of the first half-step, set until the second one. */
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
    // midpoint of σ_i and σ_{i−1} (torch.roll(1): σ_0 pairs with the final 0, which gives NaN, never used)
    const interpol = sigmas.map((s, i) => logMidpoint(s, sigmas[(i - 1 + n) % n]));
    const tInterpol = interpol.map((s) => {
      const t = sigmaToT(s, logSigmas, true);
      return karras ? t : f32(t);
    });
    this.sigmas = expandPairs(sigmas);
    this.sigmasInterpol = expandPairs(interpol);
    const ts = [timesteps[0]];
    for (let i = 1; i < timesteps.length; i++) ts.push(tInterpol[i], timesteps[i]);
    this.timesteps = ts;
    this.saved = null;
    this.idx.reset();
  }

  scaleModelInput(sample: Float32Array, t: number): Float32Array {
    const i = this.idx.current(this.timesteps, t);
    return scaleBySigma(sample, this.saved === null ? this.sigmas[i] : this.sigmasInterpol[i]);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    const i = this.idx.current(this.timesteps, t);
    const first = this.saved === null;
    const sigma = first ? this.sigmas[i] : this.sigmas[i - 1];
    const sigmaInterpol = first ? this.sigmasInterpol[i + 1] : this.sigmasInterpol[i];
    const sigmaNext = first ? this.sigmas[i + 1] : this.sigmas[i];
    const x0 = predictX0FromSigma(this.config.prediction_type, modelOutput, sample, first ? sigma : sigmaInterpol);
    const n = sample.length;
    const prev = new Float32Array(n);
    if (this.saved === null) {
      const dt = f32(sigmaInterpol - sigma);
      for (let k = 0; k < n; k++) prev[k] = sample[k] + f32(f32(f32(sample[k] - x0[k]) / sigma) * dt);
      this.saved = sample;
    } else {
      const dt = f32(sigmaNext - sigma);
      const base = this.saved;
      for (let k = 0; k < n; k++) prev[k] = base[k] + f32(f32(f32(sample[k] - x0[k]) / sigmaInterpol) * dt);
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
