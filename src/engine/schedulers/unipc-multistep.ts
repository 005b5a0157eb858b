/**
 * diffusers' UniPCMultistepScheduler (Zhao et al. 2023): a multistep predictor (UniP) whose
 * result is refined by a corrector (UniC) once the next model output is known.
 */
import { SchedulerConfigError, f32, npRound, requirePositiveInt, resolveConfig, vpSpacedTimesteps } from './common.ts';
import {
  VP_SOLVER_DEFAULTS,
  VpSolverBase,
  alphaSigma,
  checkFinalSigmasType,
  checkUnsupported,
  convertModelOutput,
  diffOver,
  lambdaOf,
  sigmaKindOf,
  vpSigmas,
} from './multistep-common.ts';
import type { SchedulerConfig, StepResult } from './types.ts';

const DEFAULTS = {
  ...VP_SOLVER_DEFAULTS,
  predict_x0: true,
  solver_type: 'bh2',
  lower_order_final: true,
  disable_corrector: [] as number[],
  timestep_spacing: 'linspace',
  steps_offset: 0,
  final_sigmas_type: 'zero',
  rescale_betas_zero_snr: false,
  sigma_min: null as number | null,
  sigma_max: null as number | null,
  shift_terminal: null as number | null,
};
export type UniPCMultistepConfig = typeof DEFAULTS;

/**
 * torch.linalg.solve for the tiny float32 systems UniPC builds: LAPACK's LU with partial
 * pivoting (multipliers through the pivot's reciprocal), then the two triangular solves.
 */
export function solveF32(matrix: number[][], rhs: number[]): number[] {
  const n = rhs.length;
  const a = matrix.map((row) => row.map(f32));
  const b = rhs.map(f32);
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(a[i][k]) > Math.abs(a[p][k])) p = i;
    [a[k], a[p]] = [a[p], a[k]];
    [b[k], b[p]] = [b[p], b[k]];
    const inv = f32(1 / a[k][k]);
    for (let i = k + 1; i < n; i++) {
      const l = f32(a[i][k] * inv);
      for (let j = k + 1; j < n; j++) a[i][j] = f32(a[i][j] - f32(l * a[k][j]));
      b[i] = f32(b[i] - f32(l * b[k]));
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let acc = b[i];
    for (let j = i + 1; j < n; j++) acc = f32(acc - f32(x[j] * a[i][j]));
    x[i] = f32(acc / a[i][i]);
  }
  return x;
}

export class UniPCMultistepScheduler extends VpSolverBase {
  readonly name = 'UniPCMultistepScheduler';
  readonly config: UniPCMultistepConfig;
  private lowerOrderNums = 0;
  private lastSample: Float32Array | null = null;
  /** The predictor's order of the previous step, which the corrector reuses. */
  private thisOrder = 1;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    super(c);
    this.config = c;
    checkUnsupported(this.name, c);
    if (c.shift_terminal !== null) {
      throw new SchedulerConfigError(`${this.name}: shift_terminal is only supported with use_flow_sigmas`);
    }
    if (c.solver_type !== 'bh1' && c.solver_type !== 'bh2') {
      if (!['midpoint', 'heun', 'logrho'].includes(c.solver_type)) {
        throw new SchedulerConfigError(`${this.name}: solver_type "${c.solver_type}" must be "bh1" or "bh2"`);
      }
      c.solver_type = 'bh2';
    }
    checkFinalSigmasType(this.name, c.final_sigmas_type);
    if (!Array.isArray(c.disable_corrector)) {
      throw new SchedulerConfigError(`${this.name}: disable_corrector must be a list of step indices`);
    }
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    requirePositiveInt(numInferenceSteps, 'num_inference_steps');
    const spaced = vpSpacedTimesteps(c.timestep_spacing, numInferenceSteps, c.num_train_timesteps, c.steps_offset);
    const kind = sigmaKindOf(c);
    let { sigmas, timesteps } = vpSigmas(kind, spaced, numInferenceSteps, this.train, c.sigma_min, c.sigma_max);
    if (kind === 'karras') timesteps = timesteps.map(npRound);
    // "sigma_min" ends on the smallest training sigma, or on the last Karras / exponential one
    const sigmaMinEnd = kind === 'plain' ? this.train.sigmas[0] : sigmas[sigmas.length - 1];
    this.setSchedule(timesteps, sigmas, c.final_sigmas_type === 'sigma_min' ? sigmaMinEnd : 0, c.solver_order);
    this.lowerOrderNums = 0;
    this.lastSample = null;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    const c = this.config;
    const idx = this.currentIndex(t);
    const useCorrector = idx > 0 && !c.disable_corrector.includes(idx - 1) && this.lastSample !== null;
    const a = alphaSigma(this.sigmas[idx]);
    const converted = convertModelOutput(c.predict_x0, c.prediction_type, modelOutput, sample, a);
    let x = sample;
    if (useCorrector) x = this.corrector(converted, this.lastSample as Float32Array, idx);

    this.pushOutput(converted);
    const wanted = c.lower_order_final ? Math.min(c.solver_order, this.timesteps.length - idx) : c.solver_order;
    this.thisOrder = Math.min(wanted, this.lowerOrderNums + 1);
    this.lastSample = x;
    const prevSample = this.predictor(x, idx);
    if (this.lowerOrderNums < c.solver_order) this.lowerOrderNums++;
    this.finishStep(idx);
    return { prevSample };
  }

  /**
   * The scalars both updates share, for a step from sigma index `from` to `to` whose earlier
   * outputs sit at sigma indices `past` (most recent first).
   */
  private coefficients(from: number, to: number, past: number[], order: number) {
    const t = alphaSigma(this.sigmas[to]);
    const s0 = alphaSigma(this.sigmas[from]);
    const l0 = lambdaOf(s0);
    const h = f32(lambdaOf(t) - l0);
    const rks = past.map((si) => f32(f32(lambdaOf(alphaSigma(this.sigmas[si])) - l0) / h));
    rks.push(1);
    const hh = this.config.predict_x0 ? -h : h;
    const hPhi1 = f32(Math.expm1(hh));
    const bh = this.config.solver_type === 'bh1' ? hh : hPhi1;
    let hPhiK = f32(f32(hPhi1 / hh) - 1);
    let factorial = 1;
    const rows: number[][] = [];
    const b: number[] = [];
    for (let i = 1; i <= order; i++) {
      rows.push(rks.map((r) => (i === 1 ? 1 : i === 2 ? r : f32(r * r))));
      b.push(f32(f32(hPhiK * factorial) / bh));
      factorial *= i + 1;
      hPhiK = f32(f32(hPhiK / hh) - f32(1 / factorial));
    }
    // x_t_ = (σ_t/σ_s0)·x − α_t·hφ1·m0 for the data prediction, (α_t/α_s0)·x − σ_t·hφ1·m0 otherwise
    const [keep, scaleOut] = this.config.predict_x0
      ? [f32(t.sigma / s0.sigma), t.alpha]
      : [f32(t.alpha / s0.alpha), t.sigma];
    return { rks, rows, b, keep, m0Coef: f32(scaleOut * hPhi1), resCoef: f32(scaleOut * bh) };
  }

  /** UniP: extrapolate from the sample at idx to idx + 1 with the outputs of the last steps. */
  private predictor(x: Float32Array, idx: number): Float32Array {
    const order = this.thisOrder;
    const past = Array.from({ length: order - 1 }, (_, i) => idx - (i + 1));
    const k = this.coefficients(idx, idx + 1, past, order);
    const m0 = this.output(1);
    const d1s = past.map((_, i) => diffOver(this.output(i + 2), m0, k.rks[i]));
    let rhos: number[] = [];
    if (order === 2) rhos = [0.5];
    else if (order === 3) rhos = solveF32([k.rows[0].slice(0, 2), k.rows[1].slice(0, 2)], k.b.slice(0, 2));
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const base = f32(f32(k.keep * x[i]) - f32(k.m0Coef * m0[i]));
      if (d1s.length === 0) {
        out[i] = base;
        continue;
      }
      let res = f32(rhos[0] * d1s[0][i]);
      for (let j = 1; j < d1s.length; j++) res = f32(res + f32(rhos[j] * d1s[j][i]));
      out[i] = base - f32(k.resCoef * res);
    }
    return out;
  }

  /** UniC: redo the previous step (idx − 1 → idx) with the output just computed at idx. */
  private corrector(modelT: Float32Array, last: Float32Array, idx: number): Float32Array {
    const order = this.thisOrder;
    const past = Array.from({ length: order - 1 }, (_, i) => idx - (i + 2));
    const k = this.coefficients(idx - 1, idx, past, order);
    const m0 = this.output(1);
    const d1s = past.map((_, i) => diffOver(this.output(i + 2), m0, k.rks[i]));
    const rhos = order === 1 ? [0.5] : solveF32(k.rows, k.b);
    const rLast = rhos[rhos.length - 1];
    const out = new Float32Array(last.length);
    for (let i = 0; i < last.length; i++) {
      const base = f32(f32(k.keep * last[i]) - f32(k.m0Coef * m0[i]));
      const d1t = f32(modelT[i] - m0[i]);
      let corr = f32(rLast * d1t);
      if (d1s.length > 0) {
        let res = f32(rhos[0] * d1s[0][i]);
        for (let j = 1; j < d1s.length; j++) res = f32(res + f32(rhos[j] * d1s[j][i]));
        corr = f32(res + corr);
      }
      out[i] = base - f32(k.resCoef * corr);
    }
    return out;
  }
}

export function createUniPCMultistepScheduler(config?: SchedulerConfig): UniPCMultistepScheduler {
  return new UniPCMultistepScheduler(config);
}
