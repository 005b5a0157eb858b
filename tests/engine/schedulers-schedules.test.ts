import { describe, expect, it } from 'vitest';
import { createScheduler } from '../../src/engine/schedulers/index.ts';
import { lmsCoefficient } from '../../src/engine/schedulers/lms-discrete.ts';
import { SD15 } from './schedulers-fixtures.ts';

// Schedules for SD 1.x's betas with "leading" spacing and steps_offset 1, 4 steps: diffusers'
// set_timesteps through its own code (CPU torch with torch 2.x's linspace; numbers only). KDPM2's
// fractional timesteps come from float32 log-sigma interpolation.
const SD = { ...SD15, timestep_spacing: 'leading' };

const SCHEDULES: {
  name: string;
  karras: boolean;
  timesteps: number[];
  sigmas: number[];
  interpol?: number[];
  initNoiseSigma?: number;
}[] = [
  {
    name: 'HeunDiscreteScheduler',
    karras: false,
    timesteps: [751.0, 501.0, 501.0, 251.0, 251.0, 1.0, 1.0],
    sigmas: [4.116698265075684, 1.6236929893493652, 1.6236929893493652, 0.6983985900878906, 0.6983985900878906, 0.04131447896361351, 0.04131447896361351, 0.0],
    initNoiseSigma: 4.236413955688477,
  },
  {
    name: 'HeunDiscreteScheduler',
    karras: true,
    timesteps: [751.0, 411.4153747558594, 411.4153747558594, 69.40316772460938, 69.40316772460938, 1.0, 1.0],
    sigmas: [4.116698265075684, 1.2087777853012085, 1.2087777853012085, 0.27338722348213196, 0.27338722348213196, 0.04131447896361351, 0.04131447896361351, 0.0],
  },
  {
    name: 'KDPM2DiscreteScheduler',
    karras: false,
    timesteps: [751.0, 633.9110717773438, 501.0, 372.846435546875, 251.0, 29.840951919555664, 1.0],
    sigmas: [4.116698265075684, 1.6236929893493652, 1.6236929893493652, 0.6983985900878906, 0.6983985900878906, 0.04131447896361351, 0.04131447896361351, 0.0, 0.0, 0.0],
    interpol: [NaN, 2.585392475128174, 2.585392475128174, 1.064887285232544, 1.064887285232544, 0.16986456513404846, 0.16986456513404846, 0.0, 0.0, 0.0],
    initNoiseSigma: 4.236413955688477,
  },
  {
    name: 'KDPM2DiscreteScheduler',
    karras: true,
    timesteps: [751.0, 593.32275390625, 411.0, 201.3395233154297, 69.0, 11.793375015258789, 1.0],
    sigmas: [4.116698265075684, 1.2087777853012085, 1.2087777853012085, 0.27338722348213196, 0.27338722348213196, 0.04131447896361351, 0.04131447896361351, 0.0, 0.0, 0.0],
  },
  {
    name: 'KDPM2AncestralDiscreteScheduler',
    karras: false,
    timesteps: [751.0, 501.0, 501.0, 251.00003051757812, 251.0, 1.000026822090149, 1.0],
    sigmas: [4.116698265075684, 1.6236929893493652, 1.6236929893493652, 0.6983985900878906, 0.6983985900878906, 0.04131447896361351, 0.04131447896361351, 0.0, 0.0, 0.0],
    interpol: [1.6236929893493652, 0.6983986496925354, 0.6983986496925354, 0.041314706206321716, 0.041314706206321716, 0.0, 0.0, 0.0, 0.0, 0.0],
    initNoiseSigma: 4.236413955688477,
  },
  {
    name: 'KDPM2AncestralDiscreteScheduler',
    karras: true,
    timesteps: [751.0, 411.4154052734375, 411.0, 69.40306091308594, 69.0, 1.0, 1.0],
    sigmas: [4.116698265075684, 1.2087777853012085, 1.2087777853012085, 0.27338722348213196, 0.27338722348213196, 0.04131447896361351, 0.04131447896361351, 0.0, 0.0, 0.0],
  },
  {
    name: 'LMSDiscreteScheduler',
    karras: false,
    timesteps: [751.0, 501.0, 251.0, 1.0],
    sigmas: [4.116698265075684, 1.6236929893493652, 0.6983985900878906, 0.04131447896361351, 0.0],
    initNoiseSigma: 4.236413955688477,
  },
  {
    name: 'LMSDiscreteScheduler',
    karras: true,
    timesteps: [751.0, 411.4153747558594, 69.40316772460938, 1.0],
    sigmas: [4.116698265075684, 1.2087777853012085, 0.27338722348213196, 0.04131447896361351, 0.0],
  },
  {
    name: 'EulerAncestralDiscreteScheduler',
    karras: false,
    timesteps: [751.0, 501.0, 251.0, 1.0],
    sigmas: [4.116698265075684, 1.6236929893493652, 0.6983985900878906, 0.04131447896361351, 0.0],
    initNoiseSigma: 4.236413955688477,
  },
];

/** Equal to 1e-6 relative (or both NaN, as diffusers leaves an unused first midpoint). */
function expectArrayClose(got: readonly number[], want: readonly number[], rel = 1e-6, abs = 0): void {
  expect(got).toHaveLength(want.length);
  got.forEach((v, i) => {
    if (Number.isNaN(want[i])) expect(v).toBeNaN();
    else expect(Math.abs(v - want[i]), `index ${i}: ${v} vs ${want[i]}`).toBeLessThanOrEqual(rel * Math.abs(want[i]) + abs);
  });
}

describe('k-diffusion schedules of the SD 1.x config (4 steps)', () => {
  for (const c of SCHEDULES) {
    it(`${c.name}${c.karras ? ' with Karras sigmas' : ''}`, () => {
      const s = createScheduler(c.name, { ...SD, use_karras_sigmas: c.karras });
      s.setTimesteps(4);
      // fractional timesteps (Karras, KDPM2 midpoints) to 1e-4 absolute: numpy 2 computes the
      // Karras log-interpolation in float64 where the reference's numpy 1.24 used float32
      expectArrayClose(s.timesteps, c.timesteps, 0, 1e-4);
      expectArrayClose(s.sigmas!, c.sigmas);
      if (c.interpol) expectArrayClose((s as unknown as { sigmasInterpol: number[] }).sigmasInterpol, c.interpol);
      if (c.initNoiseSigma !== undefined) expect(s.initNoiseSigma).toBe(c.initNoiseSigma);
    });
  }
});

describe('LMS coefficients', () => {
  it('integrate the Lagrange basis like scipy.integrate.quad (to 1e-10)', () => {
    const sigmas = [14.614646911621094, 6.379999, 2.2617, 0.8, 0.21, 0.0];
    // scipy 1.17 quad of diffusers' lms_derivative over [σ_t, σ_{t+1}]
    const cases: [number, number, number, number][] = [
      [4, 4, 0, -0.26540095400455055],
      [4, 4, 1, 0.06337989905692039],
      [4, 4, 2, -0.008228140441136888],
      [4, 4, 3, 0.0002491953887670834],
      [2, 1, 0, -5.148117568773644],
      [2, 1, 1, 1.0298185687736428],
      [1, 0, 0, -8.234647911621094],
    ];
    for (const [order, t, cur, want] of cases) {
      expect(Math.abs(lmsCoefficient(sigmas, order, t, cur) - want)).toBeLessThan(1e-10 * Math.max(1, Math.abs(want)));
    }
  });
});
