/**
 * DPMSolverMultistepScheduler and DPMSolverSinglestepScheduler against diffusers.
 *
 * The full loops port diffusers' tests/schedulers/test_scheduler_dpm_multi.py and
 * test_scheduler_dpm_single.py: their dummy sample, dummy model and configs. Two kinds of
 * expected numbers:
 * - the values written in diffusers' tests, checked at the tolerance those tests use;
 * - sums to full precision from diffusers' own scheduler code run on CPU torch (with torch's
 *   float32 linspace as torch 2.x computes it), checked to a relative 1e-5 or better.
 * The SDE variants draw their noise from createTorchGenerator(0), which reproduces
 * torch.manual_seed(0) as diffusers' full_loop passes it.
 */
import { describe, expect, it } from 'vitest';
import { SchedulerConfigError } from '../../src/engine/schedulers/common.ts';
import { createDPMSolverMultistepScheduler } from '../../src/engine/schedulers/dpm-solver-multistep.ts';
import { createDPMSolverSinglestepScheduler } from '../../src/engine/schedulers/dpm-solver-singlestep.ts';
import type { Scheduler, SchedulerConfig } from '../../src/engine/schedulers/types.ts';
import { createTorchGenerator } from '../../src/engine/random.ts';

// ---- diffusers' SchedulerCommonTest fixtures (tests/schedulers/test_schedulers.py) ----

/** dummy_sample_deter (or dummy_noise_deter when `flip`): arange / n, shaped (3,h,w,4) then permuted to (4,3,h,w). */
function dummyDeter(flip: boolean, oneD = false): Float32Array {
  const [h, w] = oneD ? [1, 8] : [8, 8];
  const n = 4 * 3 * h * w;
  const out = new Float32Array(n);
  for (let b = 0; b < 4; b++)
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const k = ((c * h + y) * w + x) * 4 + b;
          out[((b * 3 + c) * h + y) * w + x] = (flip ? n - 1 - k : k) / n;
        }
  return out;
}

/** dummy_model: sample * t / (t + 1), in float32. */
function dummyModel(sample: Float32Array, t: number): Float32Array {
  const tf = Math.fround(t);
  const t1 = Math.fround(t + 1);
  return sample.map((v) => Math.fround(v * tf) / t1);
}

interface LoopOptions {
  steps?: number;
  /** full_loop_with_noise: start at timesteps[tStart] after add_noise of dummy_noise_deter. */
  tStart?: number;
  /** test_full_uneven_loop: skip the first timesteps without a begin index. */
  skip?: number;
  oneD?: boolean;
  rng?: 'torch';
}

function fullLoop(scheduler: Scheduler, o: LoopOptions = {}): Float32Array {
  scheduler.setTimesteps(o.steps ?? 10);
  let sample = dummyDeter(false, o.oneD);
  let timesteps = scheduler.timesteps;
  if (o.tStart !== undefined) {
    timesteps = timesteps.slice(o.tStart * scheduler.order);
    sample = scheduler.addNoise(sample, dummyDeter(true, o.oneD), timesteps[0]);
  }
  const rng = o.rng === 'torch' ? createTorchGenerator(0) : undefined;
  for (const t of timesteps.slice(o.skip ?? 0)) {
    sample = scheduler.step(dummyModel(sample, t), t, sample, rng).prevSample;
  }
  return sample;
}

function absSum(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += Math.abs(v);
  return s;
}

const relErr = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

/** get_scheduler_config of test_scheduler_dpm_multi.py */
const MULTI_BASE: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  sample_max_value: 1.0,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lower_order_final: false,
  euler_at_final: false,
  lambda_min_clipped: -Infinity,
  variance_type: null,
  final_sigmas_type: 'sigma_min',
};

/** get_scheduler_config of test_scheduler_dpm_single.py */
const SINGLE_BASE: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  sample_max_value: 1.0,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lambda_min_clipped: -Infinity,
  variance_type: null,
  final_sigmas_type: 'sigma_min',
};

const SD15: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  steps_offset: 1,
};

const multi = (over: SchedulerConfig = {}) => createDPMSolverMultistepScheduler({ ...MULTI_BASE, ...over });
const single = (over: SchedulerConfig = {}) => createDPMSolverSinglestepScheduler({ ...SINGLE_BASE, ...over });

type Case = [label: string, config: SchedulerConfig, options: LoopOptions, expectedAbsSum: number];

/** Σ|sample| after the full loop, from diffusers' DPMSolverMultistepScheduler. */
const MULTI_CASES: Case[] = [
  ['no_noise', {}, {}, 253.5513957652729],
  ['with_noise', {}, { tStart: 5 }, 318.4110982120037],
  ['v_prediction', { prediction_type: 'v_prediction' }, {}, 172.87397356604924],
  ['karras v_prediction', { prediction_type: 'v_prediction', use_karras_sigmas: true }, {}, 160.66420167247998],
  ['lu v_prediction', { prediction_type: 'v_prediction', use_lu_lambdas: true }, {}, 119.36481543598347],
  ['dpmsolver midpoint o1 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 1, prediction_type: 'epsilon' }, {}, 172.26421051262878],
  ['dpmsolver midpoint o1 sample', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 1, prediction_type: 'sample' }, {}, 677.6079487637617],
  ['dpmsolver midpoint o1 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 1, prediction_type: 'v_prediction' }, {}, 52.009719379624585],
  ['dpmsolver midpoint o2 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 2, prediction_type: 'epsilon' }, {}, 223.58609215228353],
  ['dpmsolver midpoint o2 sample', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 2, prediction_type: 'sample' }, {}, 783.4582878814545],
  ['dpmsolver midpoint o2 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 2, prediction_type: 'v_prediction' }, {}, 119.12437504151603],
  ['dpmsolver midpoint o3 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 3, prediction_type: 'epsilon' }, {}, 204.9882360083866],
  ['dpmsolver midpoint o3 sample', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 3, prediction_type: 'sample' }, {}, 751.4037907780148],
  ['dpmsolver midpoint o3 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 3, prediction_type: 'v_prediction' }, {}, 86.20618825015845],
  ['dpmsolver heun o1 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 1, prediction_type: 'epsilon' }, {}, 172.26421051262878],
  ['dpmsolver heun o1 sample', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 1, prediction_type: 'sample' }, {}, 677.6079487637617],
  ['dpmsolver heun o1 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 1, prediction_type: 'v_prediction' }, {}, 52.009719379624585],
  ['dpmsolver heun o2 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 2, prediction_type: 'epsilon' }, {}, 203.60406039684312],
  ['dpmsolver heun o2 sample', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 2, prediction_type: 'sample' }, {}, 747.775127495639],
  ['dpmsolver heun o2 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 2, prediction_type: 'v_prediction' }, {}, 94.38527872771374],
  ['dpmsolver heun o3 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 3, prediction_type: 'epsilon' }, {}, 205.00894083239837],
  ['dpmsolver heun o3 sample', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 3, prediction_type: 'sample' }, {}, 751.3968147549313],
  ['dpmsolver heun o3 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 3, prediction_type: 'v_prediction' }, {}, 86.19976131641306],
  ['dpmsolver++ midpoint o1 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 1, prediction_type: 'epsilon' }, {}, 172.26416319893906],
  ['dpmsolver++ midpoint o1 sample', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 1, prediction_type: 'sample' }, {}, 677.6076949113049],
  ['dpmsolver++ midpoint o1 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 1, prediction_type: 'v_prediction' }, {}, 52.009709865713376],
  ['dpmsolver++ midpoint o2 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 2, prediction_type: 'epsilon' }, {}, 253.5513957652729],
  ['dpmsolver++ midpoint o2 sample', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 2, prediction_type: 'sample' }, {}, 847.0431036592927],
  ['dpmsolver++ midpoint o2 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 2, prediction_type: 'v_prediction' }, {}, 172.87397356604924],
  ['dpmsolver++ midpoint o3 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 3, prediction_type: 'epsilon' }, {}, 176.96520724071888],
  ['dpmsolver++ midpoint o3 sample', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 3, prediction_type: 'sample' }, {}, 683.3213199300226],
  ['dpmsolver++ midpoint o3 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 3, prediction_type: 'v_prediction' }, {}, 69.27662643732037],
  ['dpmsolver++ heun o1 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 1, prediction_type: 'epsilon' }, {}, 172.26416319893906],
  ['dpmsolver++ heun o1 sample', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 1, prediction_type: 'sample' }, {}, 677.6076949113049],
  ['dpmsolver++ heun o1 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 1, prediction_type: 'v_prediction' }, {}, 52.009709865713376],
  ['dpmsolver++ heun o2 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 2, prediction_type: 'epsilon' }, {}, 292.1282361361664],
  ['dpmsolver++ heun o2 sample', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 2, prediction_type: 'sample' }, {}, 923.3270495512988],
  ['dpmsolver++ heun o2 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 2, prediction_type: 'v_prediction' }, {}, 230.93613094242755],
  ['dpmsolver++ heun o3 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 3, prediction_type: 'epsilon' }, {}, 176.9437173428596],
  ['dpmsolver++ heun o3 sample', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 3, prediction_type: 'sample' }, {}, 683.3309065315407],
  ['dpmsolver++ heun o3 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 3, prediction_type: 'v_prediction' }, {}, 69.27869309560629],
  ['sde-dpmsolver midpoint o1', { algorithm_type: 'sde-dpmsolver', solver_type: 'midpoint', solver_order: 1 }, { rng: 'torch' }, 284.16234219260514],
  ['sde-dpmsolver midpoint o2', { algorithm_type: 'sde-dpmsolver', solver_type: 'midpoint', solver_order: 2 }, { rng: 'torch' }, 5015.453620810062],
  ['sde-dpmsolver heun o1', { algorithm_type: 'sde-dpmsolver', solver_type: 'heun', solver_order: 1 }, { rng: 'torch' }, 284.16234219260514],
  ['sde-dpmsolver heun o2', { algorithm_type: 'sde-dpmsolver', solver_type: 'heun', solver_order: 2 }, { rng: 'torch' }, 1314.8930754587054],
  ['sde-dpmsolver++ midpoint o1', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 1 }, { rng: 'torch' }, 232.87666772166267],
  ['sde-dpmsolver++ midpoint o2', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 2 }, { rng: 'torch' }, 525.9482177291065],
  ['sde-dpmsolver++ midpoint o3', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 3 }, { rng: 'torch' }, 1409.0498250033706],
  ['sde-dpmsolver++ heun o1', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 1 }, { rng: 'torch' }, 232.87666772166267],
  ['sde-dpmsolver++ heun o2', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 2 }, { rng: 'torch' }, 774.7669677510858],
  ['sde-dpmsolver++ heun o3', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 3 }, { rng: 'torch' }, 1409.0498333517462],
  ['final=zero lof=True o3', { final_sigmas_type: 'zero', lower_order_final: true, solver_order: 3 }, {}, 187.593652994663],
  ['final=zero lof=False o3', { final_sigmas_type: 'zero', lower_order_final: false, solver_order: 3 }, {}, 188.04568384878803],
  ['final=sigma_min lof=True o3', { final_sigmas_type: 'sigma_min', lower_order_final: true, solver_order: 3 }, {}, 190.17107076686807],
  ['final=sigma_min lof=False o3', { final_sigmas_type: 'sigma_min', lower_order_final: false, solver_order: 3 }, {}, 176.96520724071888],
  ['euler_at_final', { euler_at_final: true }, {}, 187.5532876352081],
  ['lambda_min_clipped', { lambda_min_clipped: -5.1, beta_schedule: 'squaredcos_cap_v2' }, {}, 218.6485772652086],
  ['cosine', { beta_schedule: 'squaredcos_cap_v2' }, {}, 864.0531415757723],
  ['exponential', { use_exponential_sigmas: true }, {}, 209.2339119251701],
  ['zero_snr v', { rescale_betas_zero_snr: true, prediction_type: 'v_prediction', final_sigmas_type: 'zero' }, {}, 75.01618045644136],
  ['scaled_linear leading', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: 'leading', steps_offset: 1, lower_order_final: true, final_sigmas_type: 'zero' }, {}, 185.67312378209317],
  ['scaled_linear trailing karras', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: 'trailing', use_karras_sigmas: true, lower_order_final: true }, { steps: 20 }, 205.50138659670483],
  ['sd15 linspace 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: 'linspace', steps_offset: 1, lower_order_final: true, final_sigmas_type: 'zero' }, { steps: 25 }, 191.59714181325398],
  ['sd15 leading 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: 'leading', steps_offset: 1, lower_order_final: true, final_sigmas_type: 'zero' }, { steps: 25 }, 191.78909701562952],
  ['sd15 trailing 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: 'trailing', steps_offset: 1, lower_order_final: true, final_sigmas_type: 'zero' }, { steps: 25 }, 191.73465543676866],
  ['sd15 karras 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, use_karras_sigmas: true, lower_order_final: true, final_sigmas_type: 'zero' }, { steps: 25 }, 205.34430069365771],
  ['sd15 sde-dpmsolver++ karras 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, algorithm_type: 'sde-dpmsolver++', use_karras_sigmas: true, lower_order_final: true, final_sigmas_type: 'zero' }, { steps: 25, rng: 'torch' }, 285.0266926062759],
];

/** Σ|sample| after the full loop, from diffusers' DPMSolverSinglestepScheduler. */
const SINGLE_CASES: Case[] = [
  ['no_noise', {}, {}, 214.36118013435043],
  ['karras', { use_karras_sigmas: true }, {}, 172.68089380994206],
  ['v_prediction', { prediction_type: 'v_prediction' }, {}, 111.5981767870544],
  ['karras v_prediction', { prediction_type: 'v_prediction', use_karras_sigmas: true }, {}, 49.84770222353109],
  ['with_noise', {}, { tStart: 5 }, 269.2186640650034],
  ['uneven', {}, { steps: 50, skip: 3 }, 197.66430824954296],
  ['dpmsolver midpoint o1 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 1, prediction_type: 'epsilon' }, {}, 172.26421051262878],
  ['dpmsolver midpoint o1 sample', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 1, prediction_type: 'sample' }, {}, 677.6079487637617],
  ['dpmsolver midpoint o1 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 1, prediction_type: 'v_prediction' }, {}, 52.009719379624585],
  ['dpmsolver midpoint o2 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 2, prediction_type: 'epsilon' }, {}, 290.9801844363101],
  ['dpmsolver midpoint o2 sample', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 2, prediction_type: 'sample' }, {}, 886.9501321285497],
  ['dpmsolver midpoint o2 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 2, prediction_type: 'v_prediction' }, {}, 256.95072547596646],
  ['dpmsolver midpoint o3 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 3, prediction_type: 'epsilon' }, {}, 187.0832078648382],
  ['dpmsolver midpoint o3 sample', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 3, prediction_type: 'sample' }, {}, 733.0000189761631],
  ['dpmsolver midpoint o3 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'midpoint', solver_order: 3, prediction_type: 'v_prediction' }, {}, 49.352269263821654],
  ['dpmsolver heun o1 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 1, prediction_type: 'epsilon' }, {}, 172.26421051262878],
  ['dpmsolver heun o1 sample', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 1, prediction_type: 'sample' }, {}, 677.6079487637617],
  ['dpmsolver heun o1 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 1, prediction_type: 'v_prediction' }, {}, 52.009719379624585],
  ['dpmsolver heun o2 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 2, prediction_type: 'epsilon' }, {}, 216.29692896269262],
  ['dpmsolver heun o2 sample', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 2, prediction_type: 'sample' }, {}, 767.6422858212609],
  ['dpmsolver heun o2 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 2, prediction_type: 'v_prediction' }, {}, 123.99104835485923],
  ['dpmsolver heun o3 epsilon', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 3, prediction_type: 'epsilon' }, {}, 186.825972301187],
  ['dpmsolver heun o3 sample', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 3, prediction_type: 'sample' }, {}, 733.5965647604316],
  ['dpmsolver heun o3 v_prediction', { algorithm_type: 'dpmsolver', solver_type: 'heun', solver_order: 3, prediction_type: 'v_prediction' }, {}, 64.23424720391631],
  ['dpmsolver++ midpoint o1 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 1, prediction_type: 'epsilon' }, {}, 172.26416319893906],
  ['dpmsolver++ midpoint o1 sample', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 1, prediction_type: 'sample' }, {}, 677.6076949113049],
  ['dpmsolver++ midpoint o1 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 1, prediction_type: 'v_prediction' }, {}, 52.009709865713376],
  ['dpmsolver++ midpoint o2 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 2, prediction_type: 'epsilon' }, {}, 214.36118013435043],
  ['dpmsolver++ midpoint o2 sample', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 2, prediction_type: 'sample' }, {}, 750.2614901722409],
  ['dpmsolver++ midpoint o2 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 2, prediction_type: 'v_prediction' }, {}, 111.5981767870544],
  ['dpmsolver++ midpoint o3 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 3, prediction_type: 'epsilon' }, {}, 189.09418895631097],
  ['dpmsolver++ midpoint o3 sample', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 3, prediction_type: 'sample' }, {}, 729.6737950015813],
  ['dpmsolver++ midpoint o3 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'midpoint', solver_order: 3, prediction_type: 'v_prediction' }, {}, 80.49682638858212],
  ['dpmsolver++ heun o1 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 1, prediction_type: 'epsilon' }, {}, 172.26416319893906],
  ['dpmsolver++ heun o1 sample', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 1, prediction_type: 'sample' }, {}, 677.6076949113049],
  ['dpmsolver++ heun o1 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 1, prediction_type: 'v_prediction' }, {}, 52.009709865713376],
  ['dpmsolver++ heun o2 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 2, prediction_type: 'epsilon' }, {}, 249.18167214037385],
  ['dpmsolver++ heun o2 sample', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 2, prediction_type: 'sample' }, {}, 806.5334512172267],
  ['dpmsolver++ heun o2 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 2, prediction_type: 'v_prediction' }, {}, 165.98563294031192],
  ['dpmsolver++ heun o3 epsilon', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 3, prediction_type: 'epsilon' }, {}, 190.40536103356862],
  ['dpmsolver++ heun o3 sample', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 3, prediction_type: 'sample' }, {}, 739.1138230364304],
  ['dpmsolver++ heun o3 v_prediction', { algorithm_type: 'dpmsolver++', solver_type: 'heun', solver_order: 3, prediction_type: 'v_prediction' }, {}, 72.71822423517006],
  ['sde-dpmsolver++ midpoint o1', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 1 }, { rng: 'torch' }, 232.87666772166267],
  ['sde-dpmsolver++ midpoint o2', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 2 }, { rng: 'torch' }, 390.4174105501734],
  ['sde-dpmsolver++ midpoint o3', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 3 }, { rng: 'torch' }, 227.031201466918],
  ['sde-dpmsolver++ heun o1', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 1 }, { rng: 'torch' }, 232.87666772166267],
  ['sde-dpmsolver++ heun o2', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 2 }, { rng: 'torch' }, 643.3667213604786],
  ['sde-dpmsolver++ heun o3', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 3 }, { rng: 'torch' }, 1948.004652190837],
  ['final=zero lof=True o2 11 steps', { final_sigmas_type: 'zero', lower_order_final: true, solver_order: 2 }, { steps: 11 }, 181.88235633802833],
  ['final=zero lof=False o2 11 steps', { final_sigmas_type: 'zero', lower_order_final: false, solver_order: 2 }, { steps: 11 }, 181.88235633802833],
  ['final=sigma_min lof=True o2 11 steps', { final_sigmas_type: 'sigma_min', lower_order_final: true, solver_order: 2 }, { steps: 11 }, 184.30715016048634],
  ['final=sigma_min lof=False o2 11 steps', { final_sigmas_type: 'sigma_min', lower_order_final: false, solver_order: 2 }, { steps: 11 }, 184.30715016048634],
  ['final=zero lof=True o3 11 steps', { final_sigmas_type: 'zero', lower_order_final: true, solver_order: 3 }, { steps: 11 }, 180.5171450728085],
  ['final=zero lof=False o3 11 steps', { final_sigmas_type: 'zero', lower_order_final: false, solver_order: 3 }, { steps: 11 }, 180.5171450728085],
  ['final=sigma_min lof=True o3 11 steps', { final_sigmas_type: 'sigma_min', lower_order_final: true, solver_order: 3 }, { steps: 11 }, 214.54620849795174],
  ['final=sigma_min lof=False o3 11 steps', { final_sigmas_type: 'sigma_min', lower_order_final: false, solver_order: 3 }, { steps: 11 }, 214.54620849795174],
  ['sd15 karras 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, use_karras_sigmas: true, lower_order_final: false, final_sigmas_type: 'zero' }, { steps: 25 }, 202.19555305381073],
  ['sd15 sde-dpmsolver++ karras 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, algorithm_type: 'sde-dpmsolver++', use_karras_sigmas: true, final_sigmas_type: 'zero' }, { steps: 25, rng: 'torch' }, 249.0627305238636],
];

/** SD 1.5 config, DPMSolverMultistepScheduler.timesteps by "<timestep_spacing> <steps>". */
const SD15_TIMESTEPS: Record<string, number[]> = {
  'leading 1': [501],
  'leading 4': [801, 601, 401, 201],
  'leading 20': [941, 894, 847, 800, 753, 706, 659, 612, 565, 518, 471, 424, 377, 330, 283, 236, 189, 142, 95, 48],
  'leading 30': [961, 929, 897, 865, 833, 801, 769, 737, 705, 673, 641, 609, 577, 545, 513, 481, 449, 417, 385, 353, 321, 289, 257, 225, 193, 161, 129, 97, 65, 33],
  'leading 50': [951, 932, 913, 894, 875, 856, 837, 818, 799, 780, 761, 742, 723, 704, 685, 666, 647, 628, 609, 590, 571, 552, 533, 514, 495, 476, 457, 438, 419, 400, 381, 362, 343, 324, 305, 286, 267, 248, 229, 210, 191, 172, 153, 134, 115, 96, 77, 58, 39, 20],
  'linspace 1': [999],
  'linspace 4': [999, 749, 500, 250],
  'linspace 20': [999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 500, 450, 400, 350, 300, 250, 200, 150, 100, 50],
  'linspace 30': [999, 966, 932, 899, 866, 832, 799, 766, 733, 699, 666, 633, 599, 566, 533, 499, 466, 433, 400, 366, 333, 300, 266, 233, 200, 166, 133, 100, 67, 33],
  'linspace 50': [999, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 500, 480, 460, 440, 420, 400, 380, 360, 340, 320, 300, 280, 260, 240, 220, 200, 180, 160, 140, 120, 100, 80, 60, 40, 20],
  'trailing 1': [999],
  'trailing 4': [999, 749, 499, 249],
  'trailing 20': [999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 499, 449, 399, 349, 299, 249, 199, 149, 99, 49],
  'trailing 30': [999, 966, 932, 899, 866, 832, 799, 766, 732, 699, 666, 632, 599, 566, 532, 499, 466, 432, 399, 366, 332, 299, 266, 232, 199, 166, 132, 99, 66, 32],
  'trailing 50': [999, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 499, 479, 459, 439, 419, 399, 379, 359, 339, 319, 299, 279, 259, 239, 219, 199, 179, 159, 139, 119, 99, 79, 59, 39, 19],
};

/** SD 1.5 config with use_karras_sigmas, by steps (the same under every timestep_spacing). */
const SD15_KARRAS_TIMESTEPS: Record<string, number[]> = {
  '1': [999],
  '4': [999, 687, 146, 0],
  '20': [999, 962, 921, 876, 827, 772, 710, 640, 561, 474, 380, 285, 197, 123, 69, 35, 15, 6, 2, 0],
  '30': [999, 975, 949, 923, 894, 863, 830, 795, 757, 716, 672, 624, 572, 517, 458, 397, 334, 273, 214, 162, 117, 80, 53, 33, 20, 11, 6, 3, 1, 0],
  '50': [999, 985, 970, 955, 940, 924, 907, 890, 871, 853, 833, 813, 791, 769, 746, 721, 696, 669, 641, 612, 581, 549, 516, 481, 446, 409, 372, 335, 299, 263, 228, 195, 165, 137, 112, 90, 71, 55, 42, 32, 23, 17, 12, 8, 6, 4, 2, 1, 1, 0],
};

/** SD 1.5, 20 steps, DPMSolverMultistepScheduler.sigmas (float32, final sigma zero). */
const SD15_SIGMAS_20 = [14.614646911621094, 10.904239654541016, 8.30280590057373, 6.442957401275635, 5.087765216827393, 4.081730842590332, 3.321084499359131, 2.7354702949523926, 2.2764639854431152, 1.9102516174316406, 1.6182796955108643, 1.3716686964035034, 1.1643916368484497, 0.9871089458465576, 0.8327531814575195, 0.6957994699478149, 0.5716663599014282, 0.4560753107070923, 0.34393182396888733, 0.225582554936409, 0.0];
const SD15_KARRAS_SIGMAS_20 = [14.614646911621094, 11.725372314453125, 9.340211868286133, 7.383626937866211, 5.789421081542969, 4.499844074249268, 3.4647555351257324, 2.640847682952881, 1.9909217357635498, 1.483216643333435, 1.0907905101776123, 0.7909495234489441, 0.5647245049476624, 0.39639225602149963, 0.2730397582054138, 0.18416932225227356, 0.12134244292974472, 0.07786081731319427, 0.048481911420822144, 0.029167532920837402, 0.0];

describe('DPMSolverMultistepScheduler', () => {
  it('reproduces the values written in diffusers test_scheduler_dpm_multi.py', () => {
    const mean = (x: Float32Array) => absSum(x) / x.length;
    expect(Math.abs(mean(fullLoop(multi())) - 0.3301)).toBeLessThan(1e-3);
    const noisy = fullLoop(multi(), { tStart: 5 });
    expect(Math.abs(absSum(noisy) - 318.4111)).toBeLessThan(1e-2);
    expect(Math.abs(mean(noisy) - 0.4146)).toBeLessThan(1e-3);
    expect(Math.abs(mean(fullLoop(multi({ prediction_type: 'v_prediction' }))) - 0.2251)).toBeLessThan(1e-3);
    const karrasV = multi({ prediction_type: 'v_prediction', use_karras_sigmas: true });
    expect(Math.abs(mean(fullLoop(karrasV)) - 0.2096)).toBeLessThan(1e-3);
    const luV = multi({ prediction_type: 'v_prediction', use_lu_lambdas: true });
    expect(Math.abs(mean(fullLoop(luV)) - 0.1554)).toBeLessThan(1e-3);
  });

  it.each(MULTI_CASES)('full loop "%s" matches diffusers to 1e-5', (_label, config, options, expected) => {
    const out = fullLoop(multi(config), options);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(relErr(absSum(out), expected)).toBeLessThan(1e-5);
  });

  it('gives the SD 1.5 timesteps of every timestep_spacing (leading divides by N + 1)', () => {
    for (const [key, expected] of Object.entries(SD15_TIMESTEPS)) {
      const [spacing, n] = key.split(' ');
      const s = createDPMSolverMultistepScheduler({ ...SD15, timestep_spacing: spacing });
      s.setTimesteps(Number(n));
      expect(s.timesteps, key).toEqual(expected);
      expect(s.sigmas?.length).toBe(expected.length + 1);
    }
  });

  it('gives the SD 1.5 Karras timesteps under every timestep_spacing', () => {
    for (const spacing of ['leading', 'linspace', 'trailing']) {
      for (const [n, expected] of Object.entries(SD15_KARRAS_TIMESTEPS)) {
        const s = createDPMSolverMultistepScheduler({ ...SD15, timestep_spacing: spacing, use_karras_sigmas: 'yes' });
        s.setTimesteps(Number(n));
        expect(s.timesteps, `${spacing} ${n}`).toEqual(expected);
      }
    }
  });

  it('gives the SD 1.5 sigmas bit for bit', () => {
    const plain = createDPMSolverMultistepScheduler(SD15);
    plain.setTimesteps(20);
    expect(plain.sigmas).toEqual(SD15_SIGMAS_20);
    const karras = createDPMSolverMultistepScheduler({ ...SD15, use_karras_sigmas: true });
    karras.setTimesteps(20);
    expect(karras.sigmas).toEqual(SD15_KARRAS_SIGMAS_20);
  });

  it('starts mid-schedule from a begin index (img2img) as from the matching timestep', () => {
    const viaIndex = multi();
    viaIndex.setTimesteps(10);
    const start = 5;
    viaIndex.setBeginIndex(start);
    const ts = viaIndex.timesteps.slice(start);
    let a = viaIndex.addNoise(dummyDeter(false), dummyDeter(true), ts[0]);
    for (const t of ts) a = viaIndex.step(dummyModel(a, t), t, a).prevSample;
    const expected = MULTI_CASES.find(([label]) => label === 'with_noise');
    expect(relErr(absSum(a), expected?.[3] ?? NaN)).toBeLessThan(1e-5);
  });

  it('maps DEIS / UniPC names of algorithm and solver type as diffusers does, and rejects the rest', () => {
    const s = createDPMSolverMultistepScheduler({ algorithm_type: 'deis', solver_type: 'bh2', final_sigmas_type: 'sigma_min' });
    expect(s.config.algorithm_type).toBe('dpmsolver++');
    expect(s.config.solver_type).toBe('midpoint');
    expect(() => createDPMSolverMultistepScheduler({ algorithm_type: 'dpmsolver' })).toThrow(SchedulerConfigError);
    expect(() => createDPMSolverMultistepScheduler({ algorithm_type: 'nope' })).toThrow(SchedulerConfigError);
    expect(() => createDPMSolverMultistepScheduler({ thresholding: true })).toThrow(/thresholding/);
    expect(() => createDPMSolverMultistepScheduler({ use_beta_sigmas: true })).toThrow(SchedulerConfigError);
    expect(() =>
      createDPMSolverMultistepScheduler({ algorithm_type: 'sde-dpmsolver', solver_order: 3, final_sigmas_type: 'sigma_min' }),
    ).toThrow(SchedulerConfigError);
  });

  it('ignores config keys it does not know, as from_config does', () => {
    const s = createDPMSolverMultistepScheduler({ ...MULTI_BASE, _class_name: 'PNDMScheduler', skip_prk_steps: true });
    expect(s.config).not.toHaveProperty('_class_name');
    const expected = MULTI_CASES.find(([label]) => label === 'no_noise');
    expect(relErr(absSum(fullLoop(s)), expected?.[3] ?? NaN)).toBeLessThan(1e-5);
  });

  it('needs an rng for the SDE variants and draws one sample-sized batch per step', () => {
    const s = multi({ algorithm_type: 'sde-dpmsolver++' });
    s.setTimesteps(3);
    const x = dummyDeter(false);
    expect(() => s.step(x, s.timesteps[0], x)).toThrow(SchedulerConfigError);
    const calls: number[] = [];
    const rng = { randn: (n: number) => (calls.push(n), new Float32Array(n)) };
    const s2 = multi({ algorithm_type: 'sde-dpmsolver++' });
    s2.setTimesteps(3);
    let y = x;
    for (const t of s2.timesteps) y = s2.step(dummyModel(y, t), t, y, rng).prevSample;
    expect(calls).toEqual([768, 768, 768]);
  });
});

describe('DPMSolverSinglestepScheduler', () => {
  it('reproduces the values written in diffusers test_scheduler_dpm_single.py', () => {
    const mean = (x: Float32Array) => absSum(x) / x.length;
    expect(Math.abs(mean(fullLoop(single())) - 0.2791)).toBeLessThan(1e-3);
    expect(Math.abs(mean(fullLoop(single({ use_karras_sigmas: true }))) - 0.2248)).toBeLessThan(1e-3);
    expect(Math.abs(mean(fullLoop(single({ prediction_type: 'v_prediction' }))) - 0.1453)).toBeLessThan(1e-3);
    const karrasV = single({ prediction_type: 'v_prediction', use_karras_sigmas: true });
    expect(Math.abs(mean(fullLoop(karrasV)) - 0.0649)).toBeLessThan(1e-3);
    const noisy = fullLoop(single(), { tStart: 5 });
    expect(Math.abs(absSum(noisy) - 269.2187)).toBeLessThan(1e-2);
    expect(Math.abs(mean(noisy) - 0.3505)).toBeLessThan(1e-3);
    expect(Math.abs(mean(fullLoop(single(), { steps: 50, skip: 3 })) - 0.2574)).toBeLessThan(1e-3);
  });

  it.each(SINGLE_CASES)('full loop "%s" matches diffusers to 1e-5', (_label, config, options, expected) => {
    const out = fullLoop(single(config), options);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(relErr(absSum(out), expected)).toBeLessThan(1e-5);
  });

  it('gives the SD 1.5 timesteps: always linspace, whatever timestep_spacing says', () => {
    for (const spacing of ['leading', 'linspace', 'trailing']) {
      for (const n of [1, 4, 20, 30, 50]) {
        const s = createDPMSolverSinglestepScheduler({ ...SD15, timestep_spacing: spacing });
        s.setTimesteps(n);
        expect(s.timesteps, `${spacing} ${n}`).toEqual(SD15_TIMESTEPS[`linspace ${n}`]);
        const k = createDPMSolverSinglestepScheduler({ ...SD15, timestep_spacing: spacing, use_karras_sigmas: true });
        k.setTimesteps(n);
        expect(k.timesteps, `karras ${spacing} ${n}`).toEqual(SD15_KARRAS_TIMESTEPS[n]);
      }
    }
  });

  it('switches lower_order_final on for an uneven step count, as diffusers does', () => {
    const s = single({ lower_order_final: false, final_sigmas_type: 'sigma_min' });
    s.setTimesteps(10);
    expect(s.config.lower_order_final).toBe(false);
    s.setTimesteps(11);
    expect(s.config.lower_order_final).toBe(true);
  });

  it('rejects what diffusers rejects', () => {
    expect(() => createDPMSolverSinglestepScheduler({ algorithm_type: 'sde-dpmsolver' })).toThrow(SchedulerConfigError);
    expect(() => createDPMSolverSinglestepScheduler({ algorithm_type: 'dpmsolver' })).toThrow(/final_sigmas_type/);
    expect(() => createDPMSolverSinglestepScheduler({ solver_order: 4 })).toThrow(SchedulerConfigError);
  });
});
