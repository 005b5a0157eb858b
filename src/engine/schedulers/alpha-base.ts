/**
 * What the DDPM family (DDPM, DDIM, PNDM, LCM) shares besides its step: ᾱ of the training
 * schedule, the ᾱ past the last step, the identity input scaling and add_noise at ᾱ_t.
 */
import { SchedulerConfigError, addNoiseAlpha, alphasCumprod, descendingTimesteps, makeBetas, type BetaConfig } from './common.ts';
import type { Scheduler, SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

/** The config keys read here; a scheduler without such an option lacks its key. */
export interface AlphaSchedulerConfig extends BetaConfig {
  set_alpha_to_one?: boolean;
  thresholding?: boolean;
}

/** diffusers' dynamic thresholding is for pixel-space models; the ports refuse it. */
export function rejectThresholding(name: string, config: Readonly<AlphaSchedulerConfig>): void {
  if (config.thresholding) throw new SchedulerConfigError(`${name}: thresholding is not supported (pixel-space models only)`);
}

/** Why an x0-based step (DDIM, LCM) with this config is not linear in (sample, ε, noise), or null. */
export function alphaLinearStepUnsupported(name: string, config: { prediction_type: string; clip_sample: boolean }): string | null {
  if (config.prediction_type !== 'epsilon') return `${name} steps linearly only for prediction_type "epsilon" (this model: "${config.prediction_type}")`;
  return config.clip_sample ? `${name} clips its x0 estimate (clip_sample), which is not linear` : null;
}

export abstract class AlphaSchedulerBase implements Scheduler {
  abstract readonly name: string;
  abstract readonly config: Readonly<SchedulerConfig>;
  readonly order = 1;
  readonly initNoiseSigma = 1;
  timesteps: number[];
  /** float32 ᾱ per training step. */
  protected readonly alphasCumprod: Float64Array;
  /** ᾱ one step before the first training step: 1 with set_alpha_to_one (and for DDPM, which has no such option), else ᾱ_0. */
  protected readonly finalAlphaCumprod: number;
  protected numInferenceSteps: number | null = null;

  constructor(config: Readonly<AlphaSchedulerConfig>) {
    this.alphasCumprod = alphasCumprod(makeBetas(config));
    this.finalAlphaCumprod = (config.set_alpha_to_one ?? true) ? 1 : this.alphasCumprod[0];
    this.timesteps = descendingTimesteps(config.num_train_timesteps);
  }

  abstract setTimesteps(numInferenceSteps: number): void;
  abstract step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult;

  scaleModelInput(sample: Float32Array, _t?: number): Float32Array {
    return sample;
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseAlpha(this.alphasCumprod, original, noise, t);
  }

  setBeginIndex(_i: number): void {
    // these find their place from the timestep value alone (LCM overrides this)
  }

  /** ᾱ at training step t, or the final ᾱ before step 0. */
  protected alphaAt(t: number): number {
    return t >= 0 ? this.alphasCumprod[t] : this.finalAlphaCumprod;
  }
}
