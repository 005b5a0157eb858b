import { describe, expect, it } from 'vitest';
import { DDIMScheduler } from '../../src/engine/schedulers/ddim.ts';
import { EulerDiscreteScheduler } from '../../src/engine/schedulers/euler-discrete.ts';
import { PNDMScheduler } from '../../src/engine/schedulers/pndm.ts';
import { createScheduler } from '../../src/engine/schedulers/index.ts';
import type { Scheduler } from '../../src/engine/schedulers/types.ts';
import { absStats, close, dummySampleDeter, halfModel, SD15, SD15_TRAILING_TIMESTEPS } from './schedulers-fixtures.ts';

// Stable Diffusion 1.5's scheduler_config.json (SD15). Expected schedules are diffusers' set_timesteps
// run through diffusers' own code (numpy 1.24, CPU torch with torch 2.x's linspace); numbers only.
const SPACINGS = ['leading', 'linspace', 'trailing'] as const;
const STEPS = [1, 4, 20, 30, 50] as const;

const SD_TIMESTEPS: Record<string, number[]> = {
  'leading/1': [1],
  'leading/4': [751, 501, 251, 1],
  'leading/20': [951, 901, 851, 801, 751, 701, 651, 601, 551, 501, 451, 401, 351, 301, 251, 201, 151, 101, 51, 1],
  'leading/30': [958, 925, 892, 859, 826, 793, 760, 727, 694, 661, 628, 595, 562, 529, 496, 463, 430, 397, 364, 331, 298, 265, 232, 199, 166, 133, 100, 67, 34, 1],
  'leading/50': [981, 961, 941, 921, 901, 881, 861, 841, 821, 801, 781, 761, 741, 721, 701, 681, 661, 641, 621, 601, 581, 561, 541, 521, 501, 481, 461, 441, 421, 401, 381, 361, 341, 321, 301, 281, 261, 241, 221, 201, 181, 161, 141, 121, 101, 81, 61, 41, 21, 1],
  'linspace/1': [0],
  'linspace/4': [999, 666, 333, 0],
  'linspace/20': [999, 946, 894, 841, 789, 736, 684, 631, 578, 526, 473, 421, 368, 315, 263, 210, 158, 105, 53, 0],
  'linspace/30': [999, 965, 930, 896, 861, 827, 792, 758, 723, 689, 655, 620, 586, 551, 517, 482, 448, 413, 379, 344, 310, 276, 241, 207, 172, 138, 103, 69, 34, 0],
  'linspace/50': [999, 979, 958, 938, 917, 897, 877, 856, 836, 816, 795, 775, 754, 734, 714, 693, 673, 652, 632, 612, 591, 571, 550, 530, 510, 489, 469, 449, 428, 408, 387, 367, 347, 326, 306, 285, 265, 245, 224, 204, 183, 163, 143, 122, 102, 82, 61, 41, 20, 0],
  'trailing/1': SD15_TRAILING_TIMESTEPS[1],
  'trailing/4': SD15_TRAILING_TIMESTEPS[4],
  'trailing/20': SD15_TRAILING_TIMESTEPS[20],
  'trailing/30': SD15_TRAILING_TIMESTEPS[30],
  'trailing/50': SD15_TRAILING_TIMESTEPS[50],
};
const EULER_LINSPACE_TIMESTEPS: Record<number, number[]> = {
  1: [0],
  4: [999, 666, 333, 0],
  20: [999, 946.4210815429688, 893.8421020507812, 841.26318359375, 788.6842041015625, 736.1052856445312, 683.5263061523438, 630.9473876953125, 578.368408203125, 525.7894897460938, 473.2105407714844, 420.631591796875, 368.0526428222656, 315.47369384765625, 262.8947448730469, 210.3157958984375, 157.73684692382812, 105.15789794921875, 52.578948974609375, 0],
  30: [999, 964.5516967773438, 930.1034545898438, 895.6551513671875, 861.2069091796875, 826.7586059570312, 792.3103637695312, 757.862060546875, 723.413818359375, 688.9655151367188, 654.5172119140625, 620.0689697265625, 585.6206665039062, 551.1724243164062, 516.72412109375, 482.2758483886719, 447.82757568359375, 413.3793029785156, 378.9310302734375, 344.4827575683594, 310.03448486328125, 275.5862121582031, 241.13792419433594, 206.6896514892578, 172.2413787841797, 137.79310607910156, 103.3448257446289, 68.89655303955078, 34.44827651977539, 0],
  50: [999, 978.6122436523438, 958.2244873046875, 937.8367309570312, 917.448974609375, 897.0612182617188, 876.6734619140625, 856.2857055664062, 835.89794921875, 815.5101928710938, 795.1224365234375, 774.7346801757812, 754.346923828125, 733.9591674804688, 713.5714111328125, 693.1836547851562, 672.7958984375, 652.4081420898438, 632.0203857421875, 611.6326293945312, 591.244873046875, 570.8571166992188, 550.4693603515625, 530.0816040039062, 509.6938781738281, 489.3061218261719, 468.9183654785156, 448.5306091308594, 428.1428527832031, 407.7550964355469, 387.3673400878906, 366.9795837402344, 346.5918273925781, 326.2040710449219, 305.8163146972656, 285.4285583496094, 265.0408020019531, 244.65306091308594, 224.2653045654297, 203.87754821777344, 183.4897918701172, 163.10203552246094, 142.7142791748047, 122.32653045654297, 101.93877410888672, 81.55101776123047, 61.163265228271484, 40.775508880615234, 20.387754440307617, 0],
};
const EULER_INIT_NOISE_SIGMA: Record<string, number> = {
  'leading/1': 1.0008530616760254,
  'leading/4': 4.236413955688477,
  'leading/20': 11.073580741882324,
  'leading/30': 11.520334243774414,
  'leading/50': 13.158469200134277,
  'linspace/1': 0.029167532920837402,
  'linspace/4': 14.614646911621094,
  'linspace/20': 14.614646911621094,
  'linspace/30': 14.614646911621094,
  'linspace/50': 14.614646911621094,
  'trailing/1': 14.614646911621094,
  'trailing/4': 14.614646911621094,
  'trailing/20': 14.614646911621094,
  'trailing/30': 14.614646911621094,
  'trailing/50': 14.614646911621094,
};
const EULER_SIGMAS_4: Record<string, number[]> = {
  leading: [4.116698265075684, 1.6236929893493652, 0.6983985900878906, 0.04131447896361351, 0],
  linspace: [14.614646911621094, 2.9183084964752197, 0.9323583245277405, 0.029167532920837402, 0],
  trailing: [14.614646911621094, 4.081730842590332, 1.6128870248794556, 0.6932054162025452, 0],
};
const EULER_KARRAS: Record<string, { timesteps: number[]; sigmas: number[]; initNoiseSigma: number }> = {
  'leading/4': {
    timesteps: [751, 411.4153747558594, 69.40316772460938, 1],
    sigmas: [4.116698265075684, 1.2087777853012085, 0.27338722348213196, 0.04131447896361351, 0],
    initNoiseSigma: 4.236413955688477,
  },
  'leading/20': {
    timesteps: [951, 913.7394409179688, 873.1348266601562, 828.625244140625, 779.5436401367188, 725.1243286132812, 664.55517578125, 597.1300048828125, 522.5737915039062, 441.6042785644531, 356.6148681640625, 272.02899169921875, 193.7161407470703, 127.3919906616211, 76.7376480102539, 42.189613342285156, 21.151853561401367, 9.592665672302246, 3.76312518119812, 1],
    sigmas: [11.028335571289062, 8.979172706604004, 7.2654337882995605, 5.840056896209717, 4.661418914794922, 3.6928470134735107, 2.9021666049957275, 2.261272668838501, 1.7457304000854492, 1.3344045877456665, 1.0091121196746826, 0.7543023228645325, 0.5567595958709717, 0.4053298830986023, 0.2906697392463684, 0.20501598715782166, 0.1419762820005417, 0.0963389128446579, 0.06390102952718735, 0.04131447896361351, 0],
    initNoiseSigma: 11.073580741882324,
  },
  'linspace/4': {
    timesteps: [999, 687.1532592773438, 145.9390411376953, 0],
    sigmas: [14.614646911621094, 3.1686110496520996, 0.44692090153694153, 0.029167532920837402, 0],
    initNoiseSigma: 14.614646911621094,
  },
  'linspace/20': {
    timesteps: [999, 961.7327880859375, 921.0420532226562, 876.3137817382812, 826.7905883789062, 771.552001953125, 709.5297241210938, 639.61474609375, 560.9754028320312, 473.7489318847656, 380.1317138671875, 285.3175048828125, 197.08059692382812, 123.39509582519531, 69.25687408447266, 34.69735336303711, 15.481606483459473, 5.991832733154297, 1.7829500436782837, 0],
    sigmas: [14.614646911621094, 11.725372314453125, 9.340211868286133, 7.383626937866211, 5.789421081542969, 4.499844074249268, 3.4647555351257324, 2.640847682952881, 1.9909217357635498, 1.483216643333435, 1.0907905101776123, 0.7909495234489441, 0.5647245049476624, 0.39639225602149963, 0.2730397582054138, 0.18416932225227356, 0.12134244292974472, 0.07786081731319427, 0.048481911420822144, 0.029167532920837402, 0],
    initNoiseSigma: 14.614646911621094,
  },
};
const PNDM_TIMESTEPS: Record<string, number[]> = {
  'leading/1': [1],
  'leading/4': [751, 501, 501, 251, 1],
  'leading/20': [951, 901, 901, 851, 801, 751, 701, 651, 601, 551, 501, 451, 401, 351, 301, 251, 201, 151, 101, 51, 1],
  'leading/30': [958, 925, 925, 892, 859, 826, 793, 760, 727, 694, 661, 628, 595, 562, 529, 496, 463, 430, 397, 364, 331, 298, 265, 232, 199, 166, 133, 100, 67, 34, 1],
  'leading/50': [981, 961, 961, 941, 921, 901, 881, 861, 841, 821, 801, 781, 761, 741, 721, 701, 681, 661, 641, 621, 601, 581, 561, 541, 521, 501, 481, 461, 441, 421, 401, 381, 361, 341, 321, 301, 281, 261, 241, 221, 201, 181, 161, 141, 121, 101, 81, 61, 41, 21, 1],
  'linspace/1': [0],
  'linspace/4': [999, 666, 666, 333, 0],
  'linspace/20': [999, 946, 946, 894, 841, 789, 736, 684, 631, 578, 526, 473, 421, 368, 315, 263, 210, 158, 105, 53, 0],
  'linspace/30': [999, 965, 965, 930, 896, 861, 827, 792, 758, 723, 689, 655, 620, 586, 551, 517, 482, 448, 413, 379, 344, 310, 276, 241, 207, 172, 138, 103, 69, 34, 0],
  'linspace/50': [999, 979, 979, 958, 938, 917, 897, 877, 856, 836, 816, 795, 775, 754, 734, 714, 693, 673, 652, 632, 612, 591, 571, 550, 530, 510, 489, 469, 449, 428, 408, 387, 367, 347, 326, 306, 285, 265, 245, 224, 204, 183, 163, 143, 122, 102, 82, 61, 41, 20, 0],
  'trailing/1': [999],
  'trailing/4': [999, 749, 749, 499, 249],
  'trailing/20': [999, 949, 949, 899, 849, 799, 749, 699, 649, 599, 549, 499, 449, 399, 349, 299, 249, 199, 149, 99, 49],
  'trailing/30': [999, 966, 966, 932, 899, 866, 832, 799, 766, 732, 699, 666, 632, 599, 566, 532, 499, 466, 432, 399, 366, 332, 299, 266, 232, 199, 166, 132, 99, 66, 32],
  'trailing/50': [999, 979, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 499, 479, 459, 439, 419, 399, 379, 359, 339, 319, 299, 279, 259, 239, 219, 199, 179, 159, 139, 119, 99, 79, 59, 39, 19],
};

describe('SD 1.5 config: timesteps per spacing', () => {
  for (const spacing of SPACINGS) {
    for (const n of STEPS) {
      const key = `${spacing}/${n}`;
      it(`DDIM ${key}`, () => {
        const s = new DDIMScheduler({ ...SD15, timestep_spacing: spacing });
        s.setTimesteps(n);
        expect(s.timesteps).toEqual(SD_TIMESTEPS[key]);
        expect(s.initNoiseSigma).toBe(1);
      });
      it(`PNDM ${key} (skip_prk_steps: the second timestep twice)`, () => {
        const s = new PNDMScheduler({ ...SD15, timestep_spacing: spacing });
        s.setTimesteps(n);
        expect(s.timesteps).toEqual(PNDM_TIMESTEPS[key]);
      });
      it(`Euler ${key}`, () => {
        const s = new EulerDiscreteScheduler({ ...SD15, timestep_spacing: spacing });
        s.setTimesteps(n);
        expect(s.timesteps).toEqual(spacing === 'linspace' ? EULER_LINSPACE_TIMESTEPS[n] : SD_TIMESTEPS[key]);
        expect(s.initNoiseSigma).toBe(EULER_INIT_NOISE_SIGMA[key]);
      });
    }
  }

  it('Euler sigmas (4 steps)', () => {
    for (const spacing of SPACINGS) {
      const s = new EulerDiscreteScheduler({ ...SD15, timestep_spacing: spacing });
      s.setTimesteps(4);
      const want = EULER_SIGMAS_4[spacing];
      expect(s.sigmas).toHaveLength(want.length);
      s.sigmas!.forEach((v, i) => expect(v).toBe(want[i]));
    }
  });

  it('Euler with Karras sigmas', () => {
    for (const [key, want] of Object.entries(EULER_KARRAS)) {
      const [spacing, n] = key.split('/');
      const s = new EulerDiscreteScheduler({ ...SD15, timestep_spacing: spacing, use_karras_sigmas: 'yes' });
      s.setTimesteps(Number(n));
      expect(s.timesteps).toHaveLength(want.timesteps.length);
      // fractional timesteps from _sigma_to_t; 1e-3 absorbs float32 log differences between numpy versions
      s.timesteps.forEach((t, i) => expect(Math.abs(t - want.timesteps[i])).toBeLessThan(1e-3));
      s.sigmas!.forEach((v, i) => expect(Math.abs(v - want.sigmas[i])).toBeLessThanOrEqual(1e-6 * want.sigmas[i]));
      expect(Math.abs(s.initNoiseSigma / want.initNoiseSigma - 1)).toBeLessThan(1e-6);
    }
  });
});

/** A pipeline's loop: scaled input to the model, unscaled latents to step. */
function pipelineLoop(s: Scheduler, steps: number): Float32Array {
  s.setTimesteps(steps);
  let x: Float32Array = dummySampleDeter().map((v) => v * s.initNoiseSigma);
  for (const t of s.timesteps) x = s.step(halfModel(s.scaleModelInput(x, t), t), t, x).prevSample;
  return x;
}

describe('SD 1.5 config: 20-step pipeline loops', () => {
  const cases: [string, Record<string, unknown>, [number, number]][] = [
    ['EulerDiscreteScheduler', { timestep_spacing: 'leading' }, [753.8500366210938, 0.9815755486488342]],
    ['EulerDiscreteScheduler', { timestep_spacing: 'leading', use_karras_sigmas: true }, [758.5592041015625, 0.9877073168754578]],
    ['EulerDiscreteScheduler', { timestep_spacing: 'trailing', prediction_type: 'v_prediction' }, [140.2432861328125, 0.1826084405183792]],
    ['DDIMScheduler', { timestep_spacing: 'leading' }, [764.7426147460938, 0.995758593082428]],
    ['DDIMScheduler', { timestep_spacing: 'trailing', prediction_type: 'v_prediction' }, [144.00494384765625, 0.18750643730163574]],
  ];
  for (const [name, overrides, ref] of cases) {
    it(`${name} ${JSON.stringify(overrides)}`, () => {
      const { sum, mean } = absStats(pipelineLoop(createScheduler(name, { ...SD15, ...overrides }), 20));
      expect(close(sum, ref[0], 1e-5)).toBe(true);
      expect(close(mean, ref[1], 1e-5)).toBe(true);
    });
  }
});
