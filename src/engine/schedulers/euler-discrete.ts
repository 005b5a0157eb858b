/** diffusers' EulerDiscreteScheduler (Karras et al. 2022, Algorithm 2 without churn). */
import {
  LINEAR_BETA_DEFAULTS,
  SIGMA_OPTION_DEFAULTS,
  SchedulerConfigError,
  descendingTimesteps,
  f32,
  predictX0FromSigma,
  resolveConfig,
} from './common.ts';
import { SigmaSchedulerBase } from './sigma-base.ts';
import type { LinearStep, SchedulerConfig, StepResult } from './types.ts';

const DEFAULTS = {
  ...LINEAR_BETA_DEFAULTS,
  prediction_type: 'epsilon',
  interpolation_type: 'linear',
  ...SIGMA_OPTION_DEFAULTS,
  sigma_min: null as number | null,
  sigma_max: null as number | null,
  timestep_spacing: 'linspace',
  timestep_type: 'discrete',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  final_sigmas_type: 'zero',
};
export type EulerDiscreteConfig = typeof DEFAULTS;

export class EulerDiscreteScheduler extends SigmaSchedulerBase {
  readonly name = 'EulerDiscreteScheduler';
  readonly config: EulerDiscreteConfig;
  readonly order = 1;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    super(c);
    this.config = c;
    // before set_timesteps diffusers holds the whole training schedule, which sets init_noise_sigma
    this.sigmas = [...Array.from(this.trainSigmas).reverse(), 0];
    this.timesteps = this.continuousV() ? this.continuousTimesteps() : descendingTimesteps(c.num_train_timesteps);
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    const { timesteps, sigmas } = this.spacedSchedule(numInferenceSteps, {
      sigmaMin: c.sigma_min,
      sigmaMax: c.sigma_max,
      interpolation: c.interpolation_type,
      finalSigma: c.final_sigmas_type,
    });
    this.sigmas = sigmas;
    this.timesteps = this.continuousV() ? this.continuousTimesteps() : timesteps;
  }

  /** v-prediction models trained in continuous time take c_noise = ¼·ln σ instead of a timestep. */
  private continuousTimesteps(): number[] {
    return this.sigmas.slice(0, -1).map((s) => f32(0.25 * f32(Math.log(s))));
  }

  private continuousV(): boolean {
    return this.config.timestep_type === 'continuous' && this.config.prediction_type === 'v_prediction';
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    const i = this.idx.current(this.timesteps, t);
    if (i + 1 >= this.sigmas.length) throw new SchedulerConfigError('step called after the last timestep');
    const sigma = this.sigmas[i];
    const x0 = predictX0FromSigma(this.config.prediction_type, modelOutput, sample, sigma);
    const dt = f32(this.sigmas[i + 1] - sigma);
    const prev = new Float32Array(sample.length);
    for (let k = 0; k < prev.length; k++) {
      const derivative = f32(f32(sample[k] - x0[k]) / sigma);
      prev[k] = sample[k] + f32(derivative * dt);
    }
    this.idx.index = i + 1;
    return { prevSample: prev, predOriginalSample: x0 };
  }

  linearStepUnsupported(): string | null {
    return this.config.prediction_type === 'epsilon' ? null : `EulerDiscreteScheduler steps linearly only for prediction_type "epsilon" (this model: "${this.config.prediction_type}")`;
  }

  /** With ε prediction the derivative (sample - x0) / σ is ε itself: prev = sample + (σ_next - σ)·ε. */
  linearStep(t: number): LinearStep {
    const i = this.idx.current(this.timesteps, t);
    if (i + 1 >= this.sigmas.length) throw new SchedulerConfigError('step called after the last timestep');
    const dt = f32(this.sigmas[i + 1] - this.sigmas[i]);
    this.idx.index = i + 1;
    return { sample: 1, output: dt, noise: 0, noiseData: null };
  }
}
