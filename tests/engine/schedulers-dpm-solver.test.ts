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
import type { SchedulerConfig } from '../../src/engine/schedulers/types.ts';
import {
  DIFFUSERS_TEST_BETAS,
  absMean,
  absSum,
  beginIndexLoop,
  dummyModel,
  dummySampleDeter,
  expectAbsSum,
  fullLoop,
  type LoopOptions,
  relErr,
  SD15,
  VP_SD15_KARRAS_SIGMAS_20,
  VP_SD15_KARRAS_TIMESTEPS,
  VP_SD15_TIMESTEPS,
} from './schedulers-fixtures.ts';

/** get_scheduler_config of test_scheduler_dpm_single.py */
const SINGLE_BASE: SchedulerConfig = {
  ...DIFFUSERS_TEST_BETAS,
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

/** get_scheduler_config of test_scheduler_dpm_multi.py: the singlestep one and two more keys. */
const MULTI_BASE: SchedulerConfig = { ...SINGLE_BASE, lower_order_final: false, euler_at_final: false };

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
  ['sde-dpmsolver midpoint o1', { algorithm_type: 'sde-dpmsolver', solver_type: 'midpoint', solver_order: 1 }, { torchSeed: 0 }, 284.16234219260514],
  ['sde-dpmsolver midpoint o2', { algorithm_type: 'sde-dpmsolver', solver_type: 'midpoint', solver_order: 2 }, { torchSeed: 0 }, 5015.453620810062],
  ['sde-dpmsolver heun o1', { algorithm_type: 'sde-dpmsolver', solver_type: 'heun', solver_order: 1 }, { torchSeed: 0 }, 284.16234219260514],
  ['sde-dpmsolver heun o2', { algorithm_type: 'sde-dpmsolver', solver_type: 'heun', solver_order: 2 }, { torchSeed: 0 }, 1314.8930754587054],
  ['sde-dpmsolver++ midpoint o1', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 1 }, { torchSeed: 0 }, 232.87666772166267],
  ['sde-dpmsolver++ midpoint o2', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 2 }, { torchSeed: 0 }, 525.9482177291065],
  ['sde-dpmsolver++ midpoint o3', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 3 }, { torchSeed: 0 }, 1409.0498250033706],
  ['sde-dpmsolver++ heun o1', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 1 }, { torchSeed: 0 }, 232.87666772166267],
  ['sde-dpmsolver++ heun o2', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 2 }, { torchSeed: 0 }, 774.7669677510858],
  ['sde-dpmsolver++ heun o3', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 3 }, { torchSeed: 0 }, 1409.0498333517462],
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
  ['sd15 sde-dpmsolver++ karras 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, algorithm_type: 'sde-dpmsolver++', use_karras_sigmas: true, lower_order_final: true, final_sigmas_type: 'zero' }, { steps: 25, torchSeed: 0 }, 285.0266926062759],
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
  ['sde-dpmsolver++ midpoint o1', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 1 }, { torchSeed: 0 }, 232.87666772166267],
  ['sde-dpmsolver++ midpoint o2', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 2 }, { torchSeed: 0 }, 390.4174105501734],
  ['sde-dpmsolver++ midpoint o3', { algorithm_type: 'sde-dpmsolver++', solver_type: 'midpoint', solver_order: 3 }, { torchSeed: 0 }, 227.031201466918],
  ['sde-dpmsolver++ heun o1', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 1 }, { torchSeed: 0 }, 232.87666772166267],
  ['sde-dpmsolver++ heun o2', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 2 }, { torchSeed: 0 }, 643.3667213604786],
  ['sde-dpmsolver++ heun o3', { algorithm_type: 'sde-dpmsolver++', solver_type: 'heun', solver_order: 3 }, { torchSeed: 0 }, 1948.004652190837],
  ['final=zero lof=True o2 11 steps', { final_sigmas_type: 'zero', lower_order_final: true, solver_order: 2 }, { steps: 11 }, 181.88235633802833],
  ['final=zero lof=False o2 11 steps', { final_sigmas_type: 'zero', lower_order_final: false, solver_order: 2 }, { steps: 11 }, 181.88235633802833],
  ['final=sigma_min lof=True o2 11 steps', { final_sigmas_type: 'sigma_min', lower_order_final: true, solver_order: 2 }, { steps: 11 }, 184.30715016048634],
  ['final=sigma_min lof=False o2 11 steps', { final_sigmas_type: 'sigma_min', lower_order_final: false, solver_order: 2 }, { steps: 11 }, 184.30715016048634],
  ['final=zero lof=True o3 11 steps', { final_sigmas_type: 'zero', lower_order_final: true, solver_order: 3 }, { steps: 11 }, 180.5171450728085],
  ['final=zero lof=False o3 11 steps', { final_sigmas_type: 'zero', lower_order_final: false, solver_order: 3 }, { steps: 11 }, 180.5171450728085],
  ['final=sigma_min lof=True o3 11 steps', { final_sigmas_type: 'sigma_min', lower_order_final: true, solver_order: 3 }, { steps: 11 }, 214.54620849795174],
  ['final=sigma_min lof=False o3 11 steps', { final_sigmas_type: 'sigma_min', lower_order_final: false, solver_order: 3 }, { steps: 11 }, 214.54620849795174],
  ['sd15 karras 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, use_karras_sigmas: true, lower_order_final: false, final_sigmas_type: 'zero' }, { steps: 25 }, 202.19555305381073],
  ['sd15 sde-dpmsolver++ karras 25', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, algorithm_type: 'sde-dpmsolver++', use_karras_sigmas: true, final_sigmas_type: 'zero' }, { steps: 25, torchSeed: 0 }, 249.0627305238636],
];

/** SD 1.5, 20 steps, DPMSolverMultistepScheduler.sigmas (float32, final sigma zero). */
const SD15_SIGMAS_20 = [14.614646911621094, 10.904239654541016, 8.30280590057373, 6.442957401275635, 5.087765216827393, 4.081730842590332, 3.321084499359131, 2.7354702949523926, 2.2764639854431152, 1.9102516174316406, 1.6182796955108643, 1.3716686964035034, 1.1643916368484497, 0.9871089458465576, 0.8327531814575195, 0.6957994699478149, 0.5716663599014282, 0.4560753107070923, 0.34393182396888733, 0.225582554936409, 0.0];

describe('DPMSolverMultistepScheduler', () => {
  it('reproduces the values written in diffusers test_scheduler_dpm_multi.py', () => {
    expect(Math.abs(absMean(fullLoop(multi())) - 0.3301)).toBeLessThan(1e-3);
    const noisy = fullLoop(multi(), { tStart: 5 });
    expect(Math.abs(absSum(noisy) - 318.4111)).toBeLessThan(1e-2);
    expect(Math.abs(absMean(noisy) - 0.4146)).toBeLessThan(1e-3);
    expect(Math.abs(absMean(fullLoop(multi({ prediction_type: 'v_prediction' }))) - 0.2251)).toBeLessThan(1e-3);
    const karrasV = multi({ prediction_type: 'v_prediction', use_karras_sigmas: true });
    expect(Math.abs(absMean(fullLoop(karrasV)) - 0.2096)).toBeLessThan(1e-3);
    const luV = multi({ prediction_type: 'v_prediction', use_lu_lambdas: true });
    expect(Math.abs(absMean(fullLoop(luV)) - 0.1554)).toBeLessThan(1e-3);
  });

  it.each(MULTI_CASES)('full loop "%s" matches diffusers to 1e-5', (_label, config, options, expected) => {
    expectAbsSum(fullLoop(multi(config), options), expected);
  });

  it('gives the SD 1.5 timesteps of every timestep_spacing (leading divides by N + 1)', () => {
    for (const [key, expected] of Object.entries(VP_SD15_TIMESTEPS)) {
      const [spacing, n] = key.split(' ');
      const s = createDPMSolverMultistepScheduler({ ...SD15, timestep_spacing: spacing });
      s.setTimesteps(Number(n));
      expect(s.timesteps, key).toEqual(expected);
      expect(s.sigmas?.length).toBe(expected.length + 1);
    }
  });

  it('gives the SD 1.5 Karras timesteps under every timestep_spacing', () => {
    for (const spacing of ['leading', 'linspace', 'trailing']) {
      for (const [n, expected] of Object.entries(VP_SD15_KARRAS_TIMESTEPS)) {
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
    expect(karras.sigmas).toEqual(VP_SD15_KARRAS_SIGMAS_20);
  });

  it('starts mid-schedule from a begin index (img2img) as from the matching timestep', () => {
    const a = beginIndexLoop(multi(), 10, 5);
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
    const x = dummySampleDeter();
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
    expect(Math.abs(absMean(fullLoop(single())) - 0.2791)).toBeLessThan(1e-3);
    expect(Math.abs(absMean(fullLoop(single({ use_karras_sigmas: true }))) - 0.2248)).toBeLessThan(1e-3);
    expect(Math.abs(absMean(fullLoop(single({ prediction_type: 'v_prediction' }))) - 0.1453)).toBeLessThan(1e-3);
    const karrasV = single({ prediction_type: 'v_prediction', use_karras_sigmas: true });
    expect(Math.abs(absMean(fullLoop(karrasV)) - 0.0649)).toBeLessThan(1e-3);
    const noisy = fullLoop(single(), { tStart: 5 });
    expect(Math.abs(absSum(noisy) - 269.2187)).toBeLessThan(1e-2);
    expect(Math.abs(absMean(noisy) - 0.3505)).toBeLessThan(1e-3);
    expect(Math.abs(absMean(fullLoop(single(), { steps: 50, skip: 3 })) - 0.2574)).toBeLessThan(1e-3);
  });

  it.each(SINGLE_CASES)('full loop "%s" matches diffusers to 1e-5', (_label, config, options, expected) => {
    expectAbsSum(fullLoop(single(config), options), expected);
  });

  it('gives the SD 1.5 timesteps: always linspace, whatever timestep_spacing says', () => {
    for (const spacing of ['leading', 'linspace', 'trailing']) {
      for (const n of [1, 4, 20, 30, 50]) {
        const s = createDPMSolverSinglestepScheduler({ ...SD15, timestep_spacing: spacing });
        s.setTimesteps(n);
        expect(s.timesteps, `${spacing} ${n}`).toEqual(VP_SD15_TIMESTEPS[`linspace ${n}`]);
        const k = createDPMSolverSinglestepScheduler({ ...SD15, timestep_spacing: spacing, use_karras_sigmas: true });
        k.setTimesteps(n);
        expect(k.timesteps, `karras ${spacing} ${n}`).toEqual(VP_SD15_KARRAS_TIMESTEPS[n]);
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
