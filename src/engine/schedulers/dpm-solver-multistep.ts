/**
 * diffusers' DPMSolverMultistepScheduler: DPM-Solver / DPM-Solver++ (Lu et al. 2022) of order
 * 1-3 reusing past model outputs, and their SDE variants ("DPM++ 2M", "DPM++ 2M SDE" ...).
 */
import { SchedulerConfigError, f32, npRound, requirePositiveInt, resolveConfig, vpSpacedTimesteps } from './common.ts';
import { dpmFirstOrder, dpmSecondOrder, exp32, normalizeDpmSolverConfig } from './dpm-solver-common.ts';
import {
  VP_SOLVER_DEFAULTS,
  VpSolverBase,
  alphaSigma,
  checkFinalSigmasType,
  checkUnsupported,
  clippedStepCount,
  convertModelOutput,
  diffTimes,
  lambdaOf,
  linComb,
  requireRng,
  sigmaKindOf,
  vpSigmas,
  type SigmaKind,
} from './multistep-common.ts';
import type { SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

const DEFAULTS = {
  ...VP_SOLVER_DEFAULTS,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lower_order_final: true,
  euler_at_final: false,
  use_lu_lambdas: false,
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
  variance_type: null as string | null,
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};
export type DPMSolverMultistepConfig = typeof DEFAULTS;

const ALGORITHMS = ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver', 'sde-dpmsolver++'];

export class DPMSolverMultistepScheduler extends VpSolverBase {
  readonly name = 'DPMSolverMultistepScheduler';
  readonly config: DPMSolverMultistepConfig;
  private lowerOrderNums = 0;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    super(c);
    this.config = c;
    checkUnsupported(this.name, c);
    normalizeDpmSolverConfig(this.name, c, ALGORITHMS);
    if (c.algorithm_type === 'sde-dpmsolver' && c.solver_order === 3) {
      // diffusers has no third-order sde-dpmsolver update and fails when it reaches one
      throw new SchedulerConfigError(`${this.name}: algorithm_type "sde-dpmsolver" supports solver_order 1 or 2`);
    }
    checkFinalSigmasType(this.name, c.final_sigmas_type);
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    requirePositiveInt(numInferenceSteps, 'num_inference_steps');
    const last = c.num_train_timesteps - clippedStepCount(this.train, c.lambda_min_clipped);
    const spaced = vpSpacedTimesteps(c.timestep_spacing, numInferenceSteps, c.num_train_timesteps, c.steps_offset, last);
    // diffusers' precedence when several are set: Karras, then Lu, then exponential
    const kind: SigmaKind = c.use_lu_lambdas && !c.use_karras_sigmas ? 'lu' : sigmaKindOf(c);
    let { sigmas, timesteps } = vpSigmas(kind, spaced, numInferenceSteps, this.train);
    // Karras and Lu timesteps are rounded, except for the cosine schedule; all are then cast to int64
    if ((kind === 'karras' || kind === 'lu') && c.beta_schedule !== 'squaredcos_cap_v2') {
      timesteps = timesteps.map(npRound);
    }
    this.setSchedule(timesteps, sigmas, c.final_sigmas_type === 'sigma_min' ? this.train.sigmas[0] : 0, c.solver_order);
    this.lowerOrderNums = 0;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    const c = this.config;
    const idx = this.currentIndex(t);
    const n = this.timesteps.length;
    const lowerOrderFinal =
      idx === n - 1 && (c.euler_at_final || (c.lower_order_final && n < 15) || c.final_sigmas_type === 'zero');
    const lowerOrderSecond = idx === n - 2 && c.lower_order_final && n < 15;

    const converted = this.convert(modelOutput, sample, idx);
    this.pushOutput(converted);
    const noise = c.algorithm_type.startsWith('sde-') ? requireRng(this.name, rng).randn(sample.length) : null;

    let prevSample: Float32Array;
    if (c.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) {
      prevSample = this.firstOrder(converted, sample, noise, idx);
    } else if (c.solver_order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) {
      prevSample = this.secondOrder(sample, noise, idx);
    } else {
      prevSample = this.thirdOrder(sample, noise, idx);
    }
    if (this.lowerOrderNums < c.solver_order) this.lowerOrderNums++;
    this.finishStep(idx);
    return { prevSample };
  }

  /** DPM-Solver++ integrates the data prediction, DPM-Solver the noise prediction. */
  private convert(modelOutput: Float32Array, sample: Float32Array, idx: number): Float32Array {
    const c = this.config;
    return convertModelOutput(c.algorithm_type.endsWith('++'), c.prediction_type, modelOutput, sample, alphaSigma(this.sigmas[idx]));
  }

  private firstOrder(m: Float32Array, x: Float32Array, noise: Float32Array | null, idx: number): Float32Array {
    return dpmFirstOrder(this.config.algorithm_type, alphaSigma(this.sigmas[idx + 1]), alphaSigma(this.sigmas[idx]), x, m, noise);
  }

  private secondOrder(x: Float32Array, noise: Float32Array | null, idx: number): Float32Array {
    const c = this.config;
    const t = alphaSigma(this.sigmas[idx + 1]);
    const s0 = alphaSigma(this.sigmas[idx]);
    const s1 = alphaSigma(this.sigmas[idx - 1]);
    const lt = lambdaOf(t);
    const l0 = lambdaOf(s0);
    const l1 = lambdaOf(s1);
    const m0 = this.output(1);
    const m1 = this.output(2);
    const h = f32(lt - l0);
    const r0 = f32(f32(l0 - l1) / h);
    const d1 = diffTimes(m0, m1, f32(1 / r0));
    return dpmSecondOrder(c.algorithm_type, c.solver_type === 'heun', t, s0, h, x, m0, d1, noise);
  }

  private thirdOrder(x: Float32Array, noise: Float32Array | null, idx: number): Float32Array {
    const c = this.config;
    const t = alphaSigma(this.sigmas[idx + 1]);
    const s0 = alphaSigma(this.sigmas[idx]);
    const s1 = alphaSigma(this.sigmas[idx - 1]);
    const s2 = alphaSigma(this.sigmas[idx - 2]);
    const [lt, l0, l1, l2] = [lambdaOf(t), lambdaOf(s0), lambdaOf(s1), lambdaOf(s2)];
    const m0 = this.output(1);
    const m1 = this.output(2);
    const m2 = this.output(3);
    const h = f32(lt - l0);
    const r0 = f32(f32(l0 - l1) / h);
    const r1 = f32(f32(l1 - l2) / h);
    const d10 = diffTimes(m0, m1, f32(1 / r0));
    const d11 = diffTimes(m1, m2, f32(1 / r1));
    const rSum = f32(r0 + r1);
    const w = f32(r0 / rSum);
    const inv = f32(1 / rSum);
    const d1 = new Float32Array(x.length);
    const d2 = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const diff = f32(d10[i] - d11[i]);
      d1[i] = d10[i] + f32(w * diff);
      d2[i] = inv * diff;
    }
    switch (c.algorithm_type) {
      case 'dpmsolver++': {
        const em1 = f32(exp32(-h) - 1);
        return linComb(
          [
            f32(t.sigma / s0.sigma),
            -f32(t.alpha * em1),
            f32(t.alpha * f32(f32(em1 / h) + 1)),
            -f32(t.alpha * f32(f32(f32(em1 + h) / f32(h * h)) - 0.5)),
          ],
          [x, m0, d1, d2],
        );
      }
      case 'dpmsolver': {
        const ep1 = f32(exp32(h) - 1);
        return linComb(
          [
            f32(t.alpha / s0.alpha),
            -f32(t.sigma * ep1),
            -f32(t.sigma * f32(f32(ep1 / h) - 1)),
            -f32(t.sigma * f32(f32(f32(ep1 - h) / f32(h * h)) - 0.5)),
          ],
          [x, m0, d1, d2],
        );
      }
      default: {
        // sde-dpmsolver++ (the constructor refuses a third-order sde-dpmsolver)
        const h2 = f32(2 * h);
        const decay = f32(1 - exp32(f32(-2 * h)));
        return linComb(
          [
            f32(f32(t.sigma / s0.sigma) * exp32(-h)),
            f32(t.alpha * decay),
            f32(t.alpha * f32(f32(decay / f32(-2 * h)) + 1)),
            f32(t.alpha * f32(f32(f32(decay - h2) / f32(h2 * h2)) - 0.5)),
            f32(t.sigma * f32(Math.sqrt(decay))),
          ],
          [x, m0, d1, d2, noise as Float32Array],
        );
      }
    }
  }
}

export function createDPMSolverMultistepScheduler(config?: SchedulerConfig): DPMSolverMultistepScheduler {
  return new DPMSolverMultistepScheduler(config);
}
