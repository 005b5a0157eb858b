import { describe, expect, it } from 'vitest';
import { createTorchGenerator, randomSeed } from '../../src/engine/random.ts';

// Reference numbers printed by Debian's python3-torch 1.13.1 on x86-64:
//   g = torch.Generator("cpu").manual_seed(seed); torch.randn(n, generator=g)
// The AVX2 tables come from its default dispatch on an AVX2 CPU (the 'avx2' mode, expected bit-exact);
// LIBM comes from the same torch run with ATEN_CPU_CAPABILITY=default, i.e. its portable kernel over
// glibc's logf/sinf/cosf (the 'libm' mode, expected within an ulp). Each number is the shortest decimal
// that round-trips its float32 value. Sums and std are float64 over the float32 values (math.fsum).
// Lengths below 16 take torch's scalar double path, 16 and above its blocks of 16; 17 and 33 cover the
// recomputed tail.

const SMALL = [
  { seed: 0, values: {
    1: [1.5409961],
    3: [1.5409961, -0.2934289, -2.1787894],
    15: [
      1.5409961, -0.2934289, -2.1787894, 0.56843126, -1.0845224, -1.3985955, 0.40334684, 0.83802634, -0.7192576,
      -0.40334353, -0.59663534, 0.18203649, -0.8566746, 1.1006042, -1.0711874,
    ],
    16: [
      -1.1258398, -1.1523602, -0.25057858, -0.4338788, 0.84871036, 0.69200915, -0.31601277, -2.1152194, 0.32227492,
      -1.2633348, 0.3499832, 0.30813393, 0.11984151, 1.2376579, 1.1167772, -0.24727815,
    ],
    17: [
      -1.1258398, -1.6959312, 0.5666506, 0.79350835, 0.59883946, -1.5550951, -0.3413604, 1.8530061, 0.4680964,
      -0.58549756, -0.17339675, 0.18347794, 1.3893661, 1.5863342, 0.94629836, -0.84367675, 0.9318266,
    ],
    33: [
      -1.1258398, -1.1523602, -0.25057858, -0.4338788, 0.84871036, 0.69200915, -0.31601277, -2.1152194, 0.32227492,
      -1.2633348, 0.3499832, 0.30813393, 0.11984151, 1.2376579, 1.1167772, -0.24727815, -1.3526537, 0.03159274,
      -0.49267697, 0.24841475, 0.43969584, 0.112411186, 0.64079237, 0.44115627, -0.21586326, 0.792444, -0.2896677,
      0.052507486, 0.52286047, 2.3022053, -1.4688939, -1.5866888, 1.2032237,
    ],
  } },
  { seed: 42, values: {
    1: [0.33669037],
    3: [0.33669037, 0.1288094, 0.23446237],
    15: [
      0.33669037, 0.1288094, 0.23446237, 0.23033303, -1.1228564, -0.18632829, 2.2082014, -0.63799703, 0.46165723,
      0.26735088, 0.53490466, 0.8093572, 1.1102903, -1.689799, -0.9889599,
    ],
    16: [
      1.9269153, 1.4872841, 0.9007172, -2.105521, 0.67841846, -1.2345449, -0.043067478, -1.604667, -0.7521353,
      1.648723, -0.39247864, -1.4036071, -0.7278813, -0.5594302, -0.7688389, 0.7624454,
    ],
    17: [
      1.9269153, -0.15959747, -0.49739754, 0.43958926, -0.75813115, 1.0783176, 0.80080056, 1.6806206, 0.3558599,
      1.2964228, 0.6104665, 1.3347378, -0.23162432, 0.04175949, -0.2515753, 0.8598585, -0.30972677,
    ],
    33: [
      1.9269153, 1.4872841, 0.9007172, -2.105521, 0.67841846, -1.2345449, -0.043067478, -1.604667, -0.7521353,
      1.648723, -0.39247864, -1.4036071, -0.7278813, -0.5594302, -0.7688389, 0.7624454, 1.6423169, -0.87123615,
      -0.22336592, 1.7173615, 0.31888032, -0.42451897, 0.30572093, -0.7745925, 0.034912344, 0.9956361, -0.87978584,
      -0.60114205, -1.2741512, 2.122785, -1.2346531, -0.48791388, -1.41806,
    ],
  } },
  { seed: 1234, values: {
    1: [0.046130463],
    3: [0.046130463, 0.40240282, -1.0115291],
    15: [
      0.046130463, 0.40240282, -1.0115291, 0.21673824, -0.6122731, 0.50361073, 0.2309668, 0.6930773, -0.26686057,
      2.1784658, 0.1021373, -0.2590097, -0.1549004, -1.3705889, -0.13192043,
    ],
    16: [
      -0.111718565, -0.4965901, 0.1630737, -0.88168776, 0.053900193, 0.6683737, -0.059657607, -0.46749794,
      -0.21525294, 0.8839616, -0.7584169, -0.3688679, -0.3423936, -1.4019718, 0.32064798, -1.0218575,
    ],
    17: [
      -0.111718565, -0.09228753, -0.7049197, -1.6023622, 0.2890972, 0.48987085, -0.38527462, -0.7120346, 0.63691264,
      -1.4594387, 0.22065908, 0.24625207, -1.3248119, 0.69698054, -0.6630539, 1.2157569, -2.5273352,
    ],
    33: [
      -0.111718565, -0.4965901, 0.1630737, -0.88168776, 0.053900193, 0.6683737, -0.059657607, -0.46749794,
      -0.21525294, 0.8839616, -0.7584169, -0.3688679, -0.3423936, -1.4019718, 0.32064798, -1.0218575, 0.7988326,
      0.8809611, -1.1786475, -0.933995, -0.5675455, -0.27722767, -2.1833978, 0.36682636, 0.76669973, 0.007816485,
      -0.31386048, -1.1567043, 1.8408576, -1.0174322, 1.2192405, 0.16012676, -0.6857024,
    ],
  } },
  { seed: 2n ** 32n + 5n, values: {
    1: [-0.48678076],
    3: [-0.48678076, -0.6038216, -0.55809623],
    15: [
      -0.48678076, -0.6038216, -0.55809623, 0.6675243, -0.1974151, 1.9427835, -1.401702, -0.76255715, 0.6312134,
      -0.8991352, -0.55779344, 0.69071877, 0.22245859, -0.66622525, 0.6846422,
    ],
    16: [
      1.8423299, 0.51888716, -1.7119213, -1.7013793, 2.0194194, -0.26861444, -0.1307175, -1.4374138, 0.39076823,
      -0.01896776, -1.3526874, -0.7308178, 0.98792225, -0.41940793, -0.58489585, -0.7823351,
    ],
    17: [
      1.8423299, 1.2220253, -0.33644935, -0.9650602, -0.12966268, -0.60176563, 0.14499857, -0.14982717, 2.614577,
      0.77923375, -0.05833946, -2.0304952, 1.4829323, 0.49403808, 0.24921878, 1.7470315, 0.74477696,
    ],
    33: [
      1.8423299, 0.51888716, -1.7119213, -1.7013793, 2.0194194, -0.26861444, -0.1307175, -1.4374138, 0.39076823,
      -0.01896776, -1.3526874, -0.7308178, 0.98792225, -0.41940793, -0.58489585, -0.7823351, 2.779863, -0.7323887,
      1.6980466, -0.1791656, 1.9230599, 0.2879498, 0.9367965, -2.403135, 0.81834257, 0.89670414, 0.548135,
      -1.6391187, -1.8153051, -0.20662859, -0.5259512, -1.6977329, -1.0364671,
    ],
  } },
  { seed: 2n ** 64n - 1n, values: {
    1: [1.219763],
    3: [1.219763, -0.39297947, 1.0230751],
    15: [
      1.219763, -0.39297947, 1.0230751, -0.37342113, -0.0755102, -1.2582277, 0.33471572, -0.6766226, -0.26449686,
      0.19176367, -0.6646428, 0.7097577, 0.7538404, -0.18098901, 0.6128689,
    ],
    16: [
      -2.6642976, -1.0910486, 0.45144743, 0.2283607, 1.8986179, 1.5642089, -1.2553997, 0.79364425, -1.7514946,
      -0.7096747, 1.2182662, 0.22224647, -2.5158842, 0.48375222, 0.84178656, 0.14090961,
    ],
    17: [
      -2.6642976, -0.8765852, -1.6460391, -0.53825855, 0.30621922, 0.424003, 0.26563615, -3.1492953, -2.8437643,
      -1.3128663, -0.34029052, -0.32600823, -0.029644504, 0.38321704, -0.1609532, 1.9678915, 1.6243832,
    ],
    33: [
      -2.6642976, -1.0910486, 0.45144743, 0.2283607, 1.8986179, 1.5642089, -1.2553997, 0.79364425, -1.7514946,
      -0.7096747, 1.2182662, 0.22224647, -2.5158842, 0.48375222, 0.84178656, 0.14090961, 1.7933999, 1.7220553,
      0.77004033, -1.4820665, -0.86367506, -0.10301631, -1.2180537, -0.95395833, 0.7631783, -0.99843055, 0.68181765,
      -1.1006033, 1.5622407, -1.8858197, -1.0488554, -0.7110392, 0.04037104,
    ],
  } },
];
const HUNDRED = [
  { seed: 0, head: [
    -1.1258398, -1.1523602, -0.25057858, -0.4338788, 0.84871036, 0.69200915, -0.31601277, -2.1152194,
  ], tail: [
    0.45694014, -0.86537135, 0.78130794, -0.9267894, 0.20641631, -0.33344787, -0.42883, 0.23291829,
  ], sum: 3.714113546826411 },
  { seed: 42, head: [
    1.9269153, 1.4872841, 0.9007172, -2.105521, 0.67841846, -1.2345449, -0.043067478, -1.604667,
  ], tail: [
    0.2649095, 1.2731683, -0.0013108636, -0.30360377, -0.98643863, 0.12329912, 0.34986776, 0.6172807,
  ], sum: 5.976558558526449 },
  { seed: 1234, head: [
    -0.111718565, -0.4965901, 0.1630737, -0.88168776, 0.053900193, 0.6683737, -0.059657607, -0.46749794,
  ], tail: [
    0.5721773, 0.06528875, -0.023459021, 0.88760567, 1.4689033, 1.2646984, -0.27527395, -0.13253759,
  ], sum: -9.701373220421374 },
  { seed: 2n ** 32n + 5n, head: [
    1.8423299, 0.51888716, -1.7119213, -1.7013793, 2.0194194, -0.26861444, -0.1307175, -1.4374138,
  ], tail: [
    -0.18259235, 0.13225812, 0.5032901, -0.22263536, 0.12605171, 0.060349006, -0.5677021, -1.0959635,
  ], sum: 1.4552577193826437 },
  { seed: 2n ** 64n - 1n, head: [
    -2.6642976, -1.0910486, 0.45144743, 0.2283607, 1.8986179, 1.5642089, -1.2553997, 0.79364425,
  ], tail: [
    1.1518292, 0.20130053, 0.13951501, -0.7070897, -0.26315156, 1.881143, -0.8279936, 1.6752886,
  ], sum: -11.626139772124588 },
];
const BIG_INDICES = [0, 1, 2, 3, 15, 16, 1000, 8191, 12345, 16383];
const BIG = [
  { seed: 0, at: [
    -1.1258398, -1.1523602, -0.25057858, -0.4338788, -0.24727815, -1.3526537, 0.3542244, -0.1856283, -2.7204273,
    -1.078208,
  ], sum: -124.11269989912398, mean: -0.0075752380309523915, std: 1.0042080213426583, torchStd: 1.004207968711853 },
  { seed: 42, at: [
    1.9269153, 1.4872841, 0.9007172, -2.105521, 0.7624454, 1.6423169, -1.0284309, 1.8563322, -0.31988877,
    -0.2934061,
  ], sum: 149.76480043913034, mean: 0.009140917995552389, std: 1.0040214228500401, torchStd: 1.004021406173706 },
  { seed: 1234, at: [
    -0.111718565, -0.4965901, 0.1630737, -0.88168776, -1.0218575, 0.7988326, 1.7435255, 0.29067054, 1.4448549,
    1.5798631,
  ], sum: -6.569933727238094, mean: -0.000400996931594122, std: 1.0113679352352838, torchStd: 1.011367917060852 },
  { seed: 2n ** 32n + 5n, at: [
    1.8423299, 0.51888716, -1.7119213, -1.7013793, -0.7823351, 2.779863, -0.66453433, -0.73951805, -0.32036266,
    -1.0529531,
  ], sum: -150.72475410387415, mean: -0.009199508917472787, std: 0.9924643595427226, torchStd: 0.9924643635749817 },
  { seed: 2n ** 64n - 1n, at: [
    -2.6642976, -1.0910486, 0.45144743, 0.2283607, 0.14090961, 1.7933999, 0.107355535, -0.29519764, -1.6264751,
    -1.4578851,
  ], sum: 175.20644775396235, mean: 0.010693752914670554, std: 1.0009869836530647, torchStd: 1.000986933708191 },
];
const SEQUENCE_42 = [
  [0.33669037, 0.1288094, 0.23446237, 0.23033303, -1.1228564],
  [
    -0.2482575, -1.2082148, -0.47766745, 0.5201312, -1.3846737, -0.87123615, -0.22336592, 1.7173615, 0.31888032,
    -0.42451897, 0.30572093, -0.7745925, -1.5575725, 0.9956361, -0.87978584, -0.60114205, -1.2741512, 2.122785,
    -1.2346531, -0.48791388,
  ],
  [
    -0.913823, -0.65813726, 0.07802387, 0.52580875, -0.48799172, 1.191369, -0.81400764, -0.7359928, -1.4032478,
    0.036003668, -0.06347727, 0.6756149, -0.09780689, 1.844594, -1.1845374, 1.3835493,
  ],
  [-0.18632829, 0.13314196, 0.8639777],
  [-1.0156747],
  [-0.8887485],
  [
    0.14533767, -0.7106419, -0.6020683, 0.9604488, 0.40481427, -1.3543429, -0.49764624, 0.47466135, -2.5095444,
    1.2683114, 1.2242628, 0.09811721, 1.7422527, -1.3526736, 0.2190605, 0.5526349, -0.18526748,
  ],
  [-0.19801591, 1.7757638],
];
const LIBM = [
  { seed: 0, values: {
    16: [
      -1.1258398, -1.1523602, -0.25057858, -0.43387884, 0.84871036, 0.6920092, -0.31601277, -2.1152196, 0.32227492,
      -1.2633348, 0.3499832, 0.3081339, 0.11984151, 1.2376579, 1.1167772, -0.24727765,
    ],
    17: [
      -1.1258398, -1.6959313, 0.5666505, 0.7935084, 0.59883946, -1.5550951, -0.3413603, 1.8530061, 0.4680964,
      -0.58549714, -0.17339702, 0.18347792, 1.3893661, 1.5863343, 0.94629836, -0.8436768, 0.93182665,
    ],
    33: [
      -1.1258398, -1.1523602, -0.25057858, -0.43387884, 0.84871036, 0.6920092, -0.31601277, -2.1152196, 0.32227492,
      -1.2633348, 0.3499832, 0.3081339, 0.11984151, 1.2376579, 1.1167772, -0.24727765, -1.3526537, 0.03159274,
      -0.49267703, 0.24841475, 0.43969586, 0.112411186, 0.64079237, 0.44115627, -0.21586314, 0.792444, -0.28966755,
      0.052507486, 0.5228604, 2.3022053, -1.4688939, -1.5866888, 1.2032238,
    ],
  }, at: [
    -1.1258398, -1.1523602, -0.25057858, -0.43387884, -0.24727765, -1.3526537, 0.3542244, -0.1856283, -2.7204273,
    -1.078208,
  ], sum: -124.1129904872505, std: 1.0042080219192773 },
  { seed: 42, values: {
    16: [
      1.926915, 1.4872842, 0.9007172, -2.1055214, 0.67841846, -1.234545, -0.04306748, -1.604667, -0.7521362,
      1.6487229, -0.39247864, -1.4036067, -0.72788125, -0.5594299, -0.76883894, 0.7624454,
    ],
    17: [
      1.926915, -0.15959732, -0.49739748, 0.43958923, -0.75813115, 1.0783176, 0.8008005, 1.6806206, 0.3558598,
      1.2964228, 0.6104665, 1.3347378, -0.23162432, 0.04175949, -0.2515753, 0.8598585, -0.30972692,
    ],
    33: [
      1.926915, 1.4872842, 0.9007172, -2.1055214, 0.67841846, -1.234545, -0.04306748, -1.604667, -0.7521362,
      1.6487229, -0.39247864, -1.4036067, -0.72788125, -0.5594299, -0.76883894, 0.7624454, 1.6423169, -0.87123615,
      -0.22336593, 1.7173611, 0.31887972, -0.42451897, 0.30572033, -0.7745925, 0.034911666, 0.9956361, -0.87978584,
      -0.60114294, -1.2741514, 2.122785, -1.2346534, -0.48791388, -1.41806,
    ],
  }, at: [
    1.926915, 1.4872842, 0.9007172, -2.1055214, 0.7624454, 1.6423169, -1.0284309, 1.8563321, -0.31988877,
    -0.29340613,
  ], sum: 149.76451535805245, std: 1.0040214247665613 },
];

/** Asserts float32 bit-equality, reporting the first index that differs. */
function expectExact(actual: Float32Array, expected: number[]): void {
  expect(actual.length).toBe(expected.length);
  const firstMismatch = expected.findIndex((value, i) => Math.fround(value) !== actual[i]);
  expect(firstMismatch, `index ${firstMismatch}: ${actual[firstMismatch]} vs ${expected[firstMismatch]}`).toBe(-1);
}

/** Largest difference in float32 ulps (of the larger of the two values) between actual and expected. */
function maxUlps(actual: Float32Array, expected: number[]): number {
  let worst = 0;
  expected.forEach((value, i) => {
    const ulp = 2 ** (Math.floor(Math.log2(Math.max(Math.abs(value), Math.abs(actual[i])))) - 23);
    worst = Math.max(worst, Math.abs(actual[i] - Math.fround(value)) / ulp);
  });
  return worst;
}

function sum(values: Float32Array): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

function sampleStd(values: Float32Array): number {
  const mean = sum(values) / values.length;
  let squares = 0;
  for (const v of values) squares += (v - mean) ** 2;
  return Math.sqrt(squares / (values.length - 1));
}

describe('createTorchGenerator (avx2 mode, the default) against torch.randn', () => {
  for (const { seed, values } of SMALL) {
    for (const [length, expected] of Object.entries(values)) {
      it(`seed ${seed}, randn(${length}) is bit-exact`, () => {
        expectExact(createTorchGenerator(seed).randn(Number(length)), expected);
      });
    }
  }

  for (const { seed, head, tail, sum: expectedSum } of HUNDRED) {
    it(`seed ${seed}, randn(100): first and last 8 bit-exact, sum`, () => {
      const x = createTorchGenerator(seed).randn(100);
      expectExact(x.subarray(0, 8), head);
      expectExact(x.subarray(92), tail);
      expect(sum(x)).toBeCloseTo(expectedSum, 9);
    });
  }

  for (const { seed, at, sum: expectedSum, mean, std, torchStd } of BIG) {
    it(`seed ${seed}, randn(1*4*64*64): sampled indices bit-exact, sum, mean, std`, () => {
      const x = createTorchGenerator(seed).randn(4 * 64 * 64);
      expectExact(Float32Array.from(BIG_INDICES, (i) => x[i]), at);
      expect(sum(x)).toBeCloseTo(expectedSum, 8);
      expect(sum(x) / x.length).toBeCloseTo(mean, 12);
      expect(sampleStd(x)).toBeCloseTo(std, 12);
      expect(sampleStd(x)).toBeCloseTo(torchStd, 6); // torch's own x.std(), accumulated in float32
    });
  }

  it('successive calls share one stream, and the cached scalar normal survives vectorised calls', () => {
    const g = createTorchGenerator(42);
    for (const expected of SEQUENCE_42) expectExact(g.randn(expected.length), expected);
    // randn(3) after randn(5), randn(20), randn(16) starts with the sine left over from randn(5).
    expect(SEQUENCE_42[3][0]).toBe(SMALL[1].values[15][5]);
  });
});

describe('createTorchGenerator seeds', () => {
  it('uses only the low 32 bits of the seed, as torch does', () => {
    expectExact(createTorchGenerator(2 ** 40).randn(20), Array.from(createTorchGenerator(0).randn(20)));
    expectExact(createTorchGenerator(2n ** 32n + 5n).randn(3), Array.from(createTorchGenerator(5).randn(3)));
  });

  it('takes numbers and bigints alike', () => {
    expectExact(createTorchGenerator(1234n).randn(17), Array.from(createTorchGenerator(1234).randn(17)));
    expectExact(createTorchGenerator(2 ** 53 - 1).randn(4), Array.from(createTorchGenerator(2n ** 53n - 1n).randn(4)));
  });

  it('rejects seeds torch would not take as a uint64, and unsafe numbers', () => {
    expect(() => createTorchGenerator(-1)).toThrow(RangeError);
    expect(() => createTorchGenerator(-1n)).toThrow(RangeError);
    expect(() => createTorchGenerator(2n ** 64n)).toThrow(RangeError);
    expect(() => createTorchGenerator(1.5)).toThrow(RangeError);
    expect(() => createTorchGenerator(2 ** 60)).toThrow(RangeError);
    expect(() => createTorchGenerator(Number.NaN)).toThrow(RangeError);
  });

  it('rejects bad lengths and gives an empty array for 0 without drawing', () => {
    const g = createTorchGenerator(0);
    expect(() => g.randn(-1)).toThrow(RangeError);
    expect(() => g.randn(2.5)).toThrow(RangeError);
    expect(g.randn(0)).toEqual(new Float32Array(0));
    expectExact(g.randn(3), SMALL[0].values[3]);
  });
});

describe("createTorchGenerator with vectorMath: 'libm'", () => {
  for (const { seed, values, at, sum: expectedSum, std } of LIBM) {
    it(`seed ${seed}: within one ulp of torch's portable kernel`, () => {
      for (const [length, expected] of Object.entries(values)) {
        const x = createTorchGenerator(seed, { vectorMath: 'libm' }).randn(Number(length));
        expect(maxUlps(x, expected)).toBeLessThanOrEqual(1);
      }
      const x = createTorchGenerator(seed, { vectorMath: 'libm' }).randn(4 * 64 * 64);
      expect(maxUlps(Float32Array.from(BIG_INDICES, (i) => x[i]), at)).toBeLessThanOrEqual(1);
      expect(sum(x)).toBeCloseTo(expectedSum, 4);
      expect(sampleStd(x)).toBeCloseTo(std, 7);
    });
  }

  it('shares the scalar path with avx2 mode and stays within 3e-6 of it on the vectorised one', () => {
    const scalar = createTorchGenerator(7, { vectorMath: 'libm' }).randn(15);
    expectExact(scalar, Array.from(createTorchGenerator(7).randn(15)));
    const a = createTorchGenerator(7).randn(4 * 128 * 128);
    const b = createTorchGenerator(7, { vectorMath: 'libm' }).randn(4 * 128 * 128);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst).toBeLessThan(3e-6);
  });
});

describe('performance', () => {
  it('draws 4*128*128 normals quickly (a few ms warm; generous bound for slow CI)', () => {
    createTorchGenerator(0).randn(4 * 128 * 128); // warm the JIT
    const start = performance.now();
    createTorchGenerator(1).randn(4 * 128 * 128);
    expect(performance.now() - start).toBeLessThan(250);
  });
});

describe('randomSeed', () => {
  it('gives non-negative integers below 2^32 that vary', () => {
    const seeds = Array.from({ length: 32 }, randomSeed);
    for (const s of seeds) {
      expect(Number.isInteger(s)).toBe(true);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThan(2 ** 32);
    }
    expect(new Set(seeds).size).toBeGreaterThan(1);
  });
});
