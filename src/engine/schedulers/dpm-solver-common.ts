/**
 * What DPM-Solver multistep and singlestep share: config normalisation and their first- and
 * second-order updates, which differ only in the sample and output they start from.
 */
import { SchedulerConfigError, f32 } from './common.ts';
import { lambdaOf, linComb } from './multistep-common.ts';

/** α_t and σ_t of a VP sigma, as alphaSigma gives them. */
type AlphaSigma = { alpha: number; sigma: number };

export const exp32 = (x: number) => f32(Math.exp(x));

/** The config keys normalizeDpmSolverConfig reads and rewrites. */
interface DpmSolverKeys {
  algorithm_type: string;
  solver_type: string;
  final_sigmas_type: string;
}

/**
 * diffusers' constructor checks of both DPM-Solvers: DEIS's algorithm and UniPC's / DEIS's solver
 * types are mapped onto DPM-Solver++ / midpoint (in `c`), anything else is refused, and only the
 * "++" algorithms may end at sigma zero. Returns the algorithm as given.
 */
export function normalizeDpmSolverConfig(name: string, c: DpmSolverKeys, algorithms: readonly string[]): string {
  const given = c.algorithm_type;
  if (!algorithms.includes(given)) {
    // diffusers maps DEIS configs onto DPM-Solver++ and refuses anything else
    if (given !== 'deis') {
      throw new SchedulerConfigError(`${name}: algorithm_type "${given}" must be one of ${algorithms.join(', ')}`);
    }
    c.algorithm_type = 'dpmsolver++';
  }
  if (c.solver_type !== 'midpoint' && c.solver_type !== 'heun') {
    if (!['logrho', 'bh1', 'bh2'].includes(c.solver_type)) {
      throw new SchedulerConfigError(`${name}: solver_type "${c.solver_type}" must be "midpoint" or "heun"`);
    }
    c.solver_type = 'midpoint';
  }
  // diffusers checks the algorithm as given, so a DEIS config with a zero final sigma fails too
  if (given !== 'dpmsolver++' && given !== 'sde-dpmsolver++' && c.final_sigmas_type === 'zero') {
    throw new SchedulerConfigError(
      `${name}: final_sigmas_type "zero" is not supported for algorithm_type "${given}"; set final_sigmas_type to "sigma_min"`,
    );
  }
  return given;
}

/**
 * The first-order update (DDIM-like) from sample x at s to t with the converted output m; the
 * SDE algorithms add `noise`.
 */
export function dpmFirstOrder(
  algorithm: string,
  t: AlphaSigma,
  s: AlphaSigma,
  x: Float32Array,
  m: Float32Array,
  noise: Float32Array | null,
): Float32Array {
  const h = f32(lambdaOf(t) - lambdaOf(s));
  switch (algorithm) {
    case 'dpmsolver++':
      return linComb([f32(t.sigma / s.sigma), -f32(t.alpha * f32(exp32(-h) - 1))], [x, m]);
    case 'dpmsolver':
      return linComb([f32(t.alpha / s.alpha), -f32(t.sigma * f32(exp32(h) - 1))], [x, m]);
    case 'sde-dpmsolver++': {
      const decay = f32(1 - exp32(f32(-2 * h)));
      return linComb(
        [f32(f32(t.sigma / s.sigma) * exp32(-h)), f32(t.alpha * decay), f32(t.sigma * f32(Math.sqrt(decay)))],
        [x, m, noise as Float32Array],
      );
    }
    default: {
      // sde-dpmsolver
      const growth = f32(t.sigma * f32(exp32(h) - 1));
      return linComb(
        [f32(t.alpha / s.alpha), -f32(2 * growth), f32(t.sigma * f32(Math.sqrt(f32(exp32(f32(2 * h)) - 1))))],
        [x, m, noise as Float32Array],
      );
    }
  }
}

/**
 * The second-order update to t from sample x at `from` (multistep: the current sigma; singlestep:
 * the group's first), with that point's output m, the step h in λ and the first difference d1.
 */
export function dpmSecondOrder(
  algorithm: string,
  heun: boolean,
  t: AlphaSigma,
  from: AlphaSigma,
  h: number,
  x: Float32Array,
  m: Float32Array,
  d1: Float32Array,
  noise: Float32Array | null,
): Float32Array {
  switch (algorithm) {
    case 'dpmsolver++': {
      const em1 = f32(exp32(-h) - 1);
      const a = f32(t.alpha * em1);
      const k1 = heun ? f32(t.alpha * f32(f32(em1 / h) + 1)) : -f32(0.5 * a);
      return linComb([f32(t.sigma / from.sigma), -a, k1], [x, m, d1]);
    }
    case 'dpmsolver': {
      const ep1 = f32(exp32(h) - 1);
      const b = f32(t.sigma * ep1);
      const k1 = heun ? -f32(t.sigma * f32(f32(ep1 / h) - 1)) : -f32(0.5 * b);
      return linComb([f32(t.alpha / from.alpha), -b, k1], [x, m, d1]);
    }
    case 'sde-dpmsolver++': {
      const decay = f32(1 - exp32(f32(-2 * h)));
      const a = f32(t.alpha * decay);
      const k1 = heun ? f32(t.alpha * f32(f32(decay / f32(-2 * h)) + 1)) : f32(0.5 * a);
      return linComb(
        [f32(f32(t.sigma / from.sigma) * exp32(-h)), a, k1, f32(t.sigma * f32(Math.sqrt(decay)))],
        [x, m, d1, noise as Float32Array],
      );
    }
    default: {
      // sde-dpmsolver (multistep only)
      const ep1 = f32(exp32(h) - 1);
      const b = f32(t.sigma * ep1);
      const k1 = heun ? -f32(2 * f32(t.sigma * f32(f32(ep1 / h) - 1))) : -b;
      return linComb(
        [f32(t.alpha / from.alpha), -f32(2 * b), k1, f32(t.sigma * f32(Math.sqrt(f32(exp32(f32(2 * h)) - 1))))],
        [x, m, d1, noise as Float32Array],
      );
    }
  }
}
