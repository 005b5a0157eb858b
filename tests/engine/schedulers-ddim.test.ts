import { describe, expect, it } from 'vitest';
import { DDIMScheduler } from '../../src/engine/schedulers/ddim.ts';
import { absStats, close, DIFFUSERS_TEST_BETAS, fullLoop } from './schedulers-fixtures.ts';

// diffusers tests/schedulers/test_scheduler_ddim.py: 10 steps, eta 0. `want` are the test's
// values (4-6 digits); `ref` the loop through diffusers' own code on CPU torch with torch 2.x's
// linspace, matched to 1e-5 relative.
const CONFIG = { ...DIFFUSERS_TEST_BETAS, clip_sample: true };

const CASES: { name: string; config: Record<string, unknown>; tStart?: number; want: [number, number]; ref: [number, number] }[] = [
  { name: 'no noise', config: {}, want: [172.0067, 0.223967], ref: [172.0067138671875, 0.2239670753479004] },
  {
    name: 'v_prediction',
    config: { prediction_type: 'v_prediction' },
    want: [52.5302, 0.0684],
    ref: [52.53020095825195, 0.06839869916439056],
  },
  {
    name: 'set_alpha_to_one',
    config: { set_alpha_to_one: true, beta_start: 0.01 },
    want: [149.8295, 0.1951],
    ref: [149.82945251464844, 0.1950904279947281],
  },
  {
    name: 'no set_alpha_to_one',
    config: { set_alpha_to_one: false, beta_start: 0.01 },
    want: [149.0784, 0.1941],
    ref: [149.0784149169922, 0.19411252439022064],
  },
  { name: 'with noise from step 8', config: {}, tStart: 8, want: [354.5418, 0.4616], ref: [354.54180908203125, 0.4616429805755615] },
];

describe('DDIMScheduler full loops (diffusers test_scheduler_ddim.py)', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const s = new DDIMScheduler({ ...CONFIG, ...c.config });
      const { sum, mean } = absStats(fullLoop(s, { steps: 10, tStart: c.tStart }));
      expect(Math.abs(sum - c.want[0])).toBeLessThan(1e-4);
      expect(Math.abs(mean - c.want[1])).toBeLessThan(1e-4);
      expect(close(sum, c.ref[0], 1e-5)).toBe(true);
      expect(close(mean, c.ref[1], 1e-5)).toBe(true);
    });
  }

  it('eta > 0 draws one noise tensor per step from the rng', () => {
    const s = new DDIMScheduler(CONFIG);
    s.eta = 1;
    let calls = 0;
    const rng = { randn: (n: number) => (calls++, new Float32Array(n).fill(0.5)) };
    fullLoop(s, { steps: 5, rng });
    expect(calls).toBe(5);
  });
});
