/**
 * diffusers' KDPM2AncestralDiscreteScheduler ("DPM2 a"): DPM2 towards σ_down, then fresh noise
 * of σ_up after each second half-step. N steps call the model 2N − 1 times.
 */
import {
  SchedulerConfigError,
  ancestralSigmas,
  f32,
  predictX0FromSigma,
  scaleBySigma,
} from './common.ts';
import { KDPM2Base, expandPairs, logMidpoint } from './kdpm2-discrete.ts';
import type { SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

export class KDPM2AncestralDiscreteScheduler extends KDPM2Base {
  readonly name = 'KDPM2AncestralDiscreteScheduler';
  private sigmasUp: number[] = [];
  private sigmasDown: number[] = [];

  constructor(config: SchedulerConfig = {}) {
    super(config);
    this.setTimesteps(this.config.num_train_timesteps);
  }

  setTimesteps(numInferenceSteps: number): void {
    const { timesteps, sigmas, logSigmas } = this.baseSchedule(numInferenceSteps);
    const n = sigmas.length;
    const up: number[] = [];
    const down: number[] = [];
    for (let i = 0; i < n; i++) {
      // at the final σ = 0, σ_up is 0/0 = NaN, as in diffusers; it is never used
      const a = ancestralSigmas(sigmas[i], i + 1 < n ? sigmas[i + 1] : 0);
      up.push(a.up);
      down.push(i === n - 1 ? 0 : a.down);
    }
    const interpol = sigmas.map((s, i) => (i >= n - 2 ? 0 : logMidpoint(s, down[i])));
    const tInterpol = this.midpointTimesteps(interpol, logSigmas);
    this.sigmas = expandPairs(sigmas);
    this.sigmasInterpol = expandPairs(interpol);
    this.sigmasUp = expandPairs(up);
    this.sigmasDown = expandPairs(down);
    const ts = [timesteps[0]];
    for (let i = 1; i < timesteps.length; i++) ts.push(tInterpol[i - 1], timesteps[i]);
    this.timesteps = ts;
  }

  override scaleModelInput(sample: Float32Array, t: number): Float32Array {
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
}
