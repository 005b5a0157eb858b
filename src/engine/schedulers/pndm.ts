/**
 * diffusers' PNDMScheduler (Liu et al. 2022): pseudo Runge–Kutta warm-up steps (unless
 * skip_prk_steps, as in Stable Diffusion), then pseudo linear multistep. With skip_prk_steps the
 * second timestep is called twice; without it the 4 warm-up steps take 13 model calls.
 */
import { AlphaSchedulerBase } from './alpha-base.ts';
import {
  LINEAR_BETA_DEFAULTS,
  SchedulerConfigError,
  f32,
  npRound,
  requirePositiveInt,
  resolveConfig,
  spacedTimesteps,
} from './common.ts';
import type { SchedulerConfig, StepResult } from './types.ts';

const DEFAULTS = {
  ...LINEAR_BETA_DEFAULTS,
  skip_prk_steps: false,
  set_alpha_to_one: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'leading',
  steps_offset: 0,
};
export type PNDMConfig = typeof DEFAULTS;

const PNDM_ORDER = 4;

/** The multistep combinations of past model outputs (Adams–Bashforth weights), in float32. */
export function adamsBashforth(ets: readonly Float32Array[]): Float32Array {
  const n = ets[0].length;
  const out = new Float32Array(n);
  const e1 = ets[ets.length - 1];
  const e2 = ets[ets.length - 2];
  const e3 = ets[ets.length - 3];
  const e4 = ets[ets.length - 4];
  switch (ets.length) {
    case 1:
      out.set(e1);
      break;
    case 2:
      for (let i = 0; i < n; i++) out[i] = f32(f32(3 * e1[i]) - e2[i]) / 2;
      break;
    case 3:
      for (let i = 0; i < n; i++) out[i] = f32(f32(f32(23 * e1[i]) - f32(16 * e2[i])) + f32(5 * e3[i])) / 12;
      break;
    default: {
      const c = f32(1 / 24);
      for (let i = 0; i < n; i++) {
        const s = f32(f32(f32(f32(55 * e1[i]) - f32(59 * e2[i])) + f32(37 * e3[i])) - f32(9 * e4[i]));
        out[i] = c * s;
      }
    }
  }
  return out;
}

export class PNDMScheduler extends AlphaSchedulerBase {
  readonly name = 'PNDMScheduler';
  readonly config: PNDMConfig;
  private prkTimesteps: number[] = [];
  private ets: Float32Array[] = [];
  private counter = 0;
  private curModelOutput: Float32Array | null = null;
  private curSample: Float32Array | null = null;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    super(c);
    this.config = c;
  }

  setTimesteps(numInferenceSteps: number): void {
    requirePositiveInt(numInferenceSteps, 'num_inference_steps');
    const c = this.config;
    this.numInferenceSteps = numInferenceSteps;
    const desc = spacedTimesteps(c.timestep_spacing, c.num_train_timesteps, numInferenceSteps, c.steps_offset);
    const asc = (c.timestep_spacing === 'linspace' ? desc.map(npRound) : desc).reverse();
    if (c.skip_prk_steps) {
      this.prkTimesteps = [];
      // the second-to-last ascending timestep twice: the first PLMS step is a two-call Heun-like step
      const plms = [...asc.slice(0, -1), ...asc.slice(-2, -1), ...asc.slice(-1)].reverse();
      this.timesteps = plms;
    } else {
      const half = Math.floor(Math.floor(c.num_train_timesteps / numInferenceSteps) / 2);
      const prk = asc.slice(-PNDM_ORDER).flatMap((t) => [t, t + half]);
      const doubled = prk.slice(0, -1).flatMap((t) => [t, t]);
      this.prkTimesteps = doubled.slice(1, -1).reverse();
      this.timesteps = [...this.prkTimesteps, ...asc.slice(0, -3).reverse()];
    }
    this.ets = [];
    this.counter = 0;
    this.curModelOutput = null;
    this.curSample = null;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    if (this.numInferenceSteps === null) throw new SchedulerConfigError('PNDMScheduler: call setTimesteps before step');
    return this.counter < this.prkTimesteps.length && !this.config.skip_prk_steps
      ? this.stepPrk(modelOutput, t, sample)
      : this.stepPlms(modelOutput, t, sample);
  }

  private stepPrk(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    const n = sample.length;
    const ratio = Math.floor(this.config.num_train_timesteps / this.numInferenceSteps!);
    const prevT = t - (this.counter % 2 ? 0 : Math.floor(ratio / 2));
    const fromT = this.prkTimesteps[Math.floor(this.counter / 4) * 4];
    const phase = this.counter % 4;
    let output = modelOutput;
    const acc = this.curModelOutput ?? new Float32Array(n);
    if (phase === 3) {
      const sixth = f32(1 / 6);
      output = new Float32Array(n);
      for (let i = 0; i < n; i++) output[i] = acc[i] + f32(sixth * modelOutput[i]);
      this.curModelOutput = null;
    } else {
      const w = f32(phase === 0 ? 1 / 6 : 1 / 3);
      for (let i = 0; i < n; i++) acc[i] = acc[i] + f32(w * modelOutput[i]);
      this.curModelOutput = acc;
      if (phase === 0) {
        this.ets.push(modelOutput);
        this.curSample = sample;
      }
    }
    const prev = this.prevSample(this.curSample ?? sample, fromT, prevT, output);
    this.counter++;
    return { prevSample: prev };
  }

  private stepPlms(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    if (!this.config.skip_prk_steps && this.ets.length < 3) {
      throw new SchedulerConfigError('PNDMScheduler: the PLMS steps need the Runge-Kutta warm-up steps first');
    }
    const ratio = Math.floor(this.config.num_train_timesteps / this.numInferenceSteps!);
    let fromT = t;
    let prevT = t - ratio;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(modelOutput);
    } else {
      // the repeated timestep: step again from t + ratio, now with the averaged slope
      prevT = t;
      fromT = t + ratio;
    }
    let output: Float32Array;
    let from = sample;
    if (this.ets.length === 1 && this.counter === 0) {
      output = modelOutput;
      this.curSample = sample;
    } else if (this.ets.length === 1 && this.counter === 1) {
      const e = this.ets[0];
      output = new Float32Array(sample.length);
      for (let i = 0; i < output.length; i++) output[i] = f32(modelOutput[i] + e[i]) / 2;
      from = this.curSample!;
      this.curSample = null;
    } else {
      output = adamsBashforth(this.ets);
    }
    const prev = this.prevSample(from, fromT, prevT, output);
    this.counter++;
    return { prevSample: prev };
  }

  /** Eq. 9 of the PNDM paper, the "transfer" from t to prevT given an ε estimate. */
  private prevSample(sample: Float32Array, t: number, prevT: number, modelOutput: Float32Array): Float32Array {
    const aT = this.alphasCumprod[t];
    const aPrev = this.alphaAt(prevT);
    const bT = f32(1 - aT);
    const bPrev = f32(1 - aPrev);
    const n = sample.length;
    let eps = modelOutput;
    if (this.config.prediction_type === 'v_prediction') {
      const sa = f32(Math.sqrt(aT));
      const sb = f32(Math.sqrt(bT));
      eps = new Float32Array(n);
      for (let i = 0; i < n; i++) eps[i] = f32(sa * modelOutput[i]) + f32(sb * sample[i]);
    } else if (this.config.prediction_type !== 'epsilon') {
      throw new SchedulerConfigError(
        `PNDMScheduler: prediction_type "${this.config.prediction_type}" is not supported (use "epsilon" or "v_prediction")`,
      );
    }
    const sampleCoef = f32(Math.sqrt(f32(aPrev / aT)));
    const denom = f32(f32(aT * f32(Math.sqrt(bPrev))) + f32(Math.sqrt(f32(f32(aT * bT) * aPrev))));
    const diff = f32(aPrev - aT);
    const prev = new Float32Array(n);
    for (let i = 0; i < n; i++) prev[i] = f32(sampleCoef * sample[i]) - f32(f32(diff * eps[i]) / denom);
    return prev;
  }
}
