import { describe, expect, it } from 'vitest';
import { ENHANCE_SUFFIX, isErrorResponse, validateImg2ImgRequest, validateRequest, type NormalizedRequest } from '../../src/api/validate-request.ts';
import type { ErrorResponse, FieldErrors } from '../../src/api/responses.ts';
import { SCHEDULER_NAMES, supportedSchedulerNames } from '../../src/engine/schedulers/index.ts';

const MODELS = ['tiny-sd', 'tiny-sd-analytic'];

/** The seed document's example request (API.md), exactly as written there. */
const SEED_EXAMPLE_JSON = `{ "key": "", "prompt": "a cat sitting on a bench", "negative_prompt": null,
  "init_image": "https://raw.githubusercontent.com/CompVis/stable-diffusion/main/data/inpainting_examples/overture-creations-5sI6fQgYIuo.png",
  "width": "512", "height": "512", "samples": "1", "num_inference_steps": "30",
  "safety_checker": "no", "enhance_prompt": "yes", "guidance_scale": 7.5, "strength": 0.7,
  "seed": null, "webhook": null, "track_id": null }`;

const BASE = { prompt: 'a cat', init_image: 'https://example.com/cat.png' };

function ok(request: Record<string, unknown>): NormalizedRequest {
  const r = validateImg2ImgRequest({ ...BASE, ...request }, MODELS);
  if (isErrorResponse(r)) throw new Error(`expected a valid request, got ${JSON.stringify(r)}`);
  return r;
}

function fieldErrors(request: unknown): FieldErrors {
  const r = validateImg2ImgRequest(request, MODELS);
  if (!isErrorResponse(r)) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  expect(r.status).toBe('error');
  if (typeof r.message === 'string') throw new Error(`expected a field map, got the string "${r.message}"`);
  // Every key maps to a non-empty list of non-empty sentences.
  for (const [field, reasons] of Object.entries(r.message)) {
    expect(reasons.length, field).toBeGreaterThan(0);
    for (const reason of reasons) expect(reason, field).toMatch(/^\S.*\.$/);
  }
  return r.message;
}

/** The errors of BASE plus `patch`, which must fail on `field` alone. */
function errorOn(field: string, patch: Record<string, unknown>): string[] {
  const errors = fieldErrors({ ...BASE, ...patch });
  expect(Object.keys(errors)).toEqual([field]);
  return errors[field];
}

describe('the seed document example request', () => {
  it('is accepted exactly as written and normalized as expected', () => {
    const r = validateImg2ImgRequest(JSON.parse(SEED_EXAMPLE_JSON), MODELS);
    expect(isErrorResponse(r)).toBe(false);
    expect(r).toEqual({
      prompt: 'a cat sitting on a bench',
      promptUsed: 'a cat sitting on a bench' + ENHANCE_SUFFIX,
      negativePrompt: '',
      initImage: 'https://raw.githubusercontent.com/CompVis/stable-diffusion/main/data/inpainting_examples/overture-creations-5sI6fQgYIuo.png',
      width: 512,
      height: 512,
      samples: 1,
      steps: 30,
      guidanceScale: 7.5,
      strength: 0.7,
      seed: null,
      safetyChecker: false,
      enhancePrompt: true,
      base64: false,
      webhook: null,
      trackId: null,
      scheduler: undefined,
      schedulerOverrides: {},
      modelId: undefined,
      mode: 'img2img',
      maskImage: undefined,
      overlapWidth: undefined,
      upscale: 1,
      instantResponse: false,
    } satisfies NormalizedRequest);
  });

  it('enhance_prompt "yes" appends a fixed, non-empty suffix that starts with a separator', () => {
    expect(ENHANCE_SUFFIX).toMatch(/^, \S/);
    expect(ok({ enhance_prompt: 'no' }).promptUsed).toBe('a cat');
  });
});

describe('defaults and coercions', () => {
  it('a minimal request gets the documented defaults', () => {
    const r = ok({});
    expect(r).toMatchObject({
      width: 512, height: 512, samples: 1, steps: 30, guidanceScale: 7.5, strength: 0.7, seed: null,
      safetyChecker: false, enhancePrompt: false, base64: false, webhook: null, trackId: null, negativePrompt: '',
      promptUsed: 'a cat', schedulerOverrides: {},
    });
  });

  it.each([
    ['width', '640', 640], ['width', 640, 640], ['width', ' 640 ', 640], ['width', '640.0', 640],
    ['height', '768', 768], ['height', 768, 768],
    ['samples', '3', 3], ['samples', 4, 4],
    ['num_inference_steps', '20', 20], ['num_inference_steps', 50, 50],
    ['guidance_scale', '7', 7], ['guidance_scale', 12.5, 12.5], ['guidance_scale', '1', 1], ['guidance_scale', 0, 0], ['guidance_scale', '0', 0],
    ['strength', '0.5', 0.5], ['strength', 1, 1], ['strength', '.25', 0.25],
    ['seed', '42', 42], ['seed', 42, 42], ['seed', 0, 0], ['seed', 4294967295, 4294967295],
  ])('%s %j -> %j', (field, value, expected) => {
    const r = ok({ [field]: value });
    const key = { width: 'width', height: 'height', samples: 'samples', num_inference_steps: 'steps', guidance_scale: 'guidanceScale', strength: 'strength', seed: 'seed' }[field] as keyof NormalizedRequest;
    expect(r[key]).toBe(expected);
  });

  it.each([null, '', '   ', undefined])('a number field given %j takes its default', (blank) => {
    const r = ok({ width: blank, height: blank, samples: blank, num_inference_steps: blank, guidance_scale: blank, strength: blank });
    expect([r.width, r.height, r.samples, r.steps, r.guidanceScale, r.strength]).toEqual([512, 512, 1, 30, 7.5, 0.7]);
  });

  it.each([
    ['yes', true], ['no', false], ['YES', true], ['No', false], [true, true], [false, false], ['true', true], ['false', false],
    [null, false], ['', false],
  ])('flag %j -> %j (safety_checker, enhance_prompt, base64)', (value, expected) => {
    const r = ok({ safety_checker: value, enhance_prompt: value, base64: value });
    expect([r.safetyChecker, r.enhancePrompt, r.base64]).toEqual([expected, expected, expected]);
    expect(r.promptUsed).toBe(expected ? 'a cat' + ENHANCE_SUFFIX : 'a cat');
  });

  it.each([null, '', -1, '-1'])('seed %j means a random seed (null)', (seed) => {
    expect(ok({ seed }).seed).toBeNull();
  });

  it('width and height are rounded down to a multiple of 8', () => {
    expect(ok({ width: 500 }).width).toBe(496);
    expect(ok({ height: '1023' }).height).toBe(1016);
    expect(ok({ width: 64, height: 71 })).toMatchObject({ width: 64, height: 64 });
  });

  it('the prompt is trimmed; the negative prompt is passed through', () => {
    const r = ok({ prompt: '  a dog  ', negative_prompt: 'blurry, low quality', enhance_prompt: 'yes' });
    expect(r.prompt).toBe('a dog');
    expect(r.promptUsed).toBe('a dog' + ENHANCE_SUFFIX);
    expect(r.negativePrompt).toBe('blurry, low quality');
  });

  it('webhook, track_id, key and unknown extra fields', () => {
    const r = ok({ webhook: 'https://hooks.example.com/sd', track_id: 7, key: 'abc', lora_model: null, multi_lingual: 'no' });
    expect(r.webhook).toBe('https://hooks.example.com/sd');
    expect(r.trackId).toBe(7);
    expect(ok({ track_id: 'job-1', webhook: 'http://localhost:8080/x' })).toMatchObject({ trackId: 'job-1', webhook: 'http://localhost:8080/x' });
    expect(ok({ key: undefined }).trackId).toBeNull();
  });

  it('scheduler, use_karras_sigmas and algorithm_type become the scheduler and its overrides', () => {
    const r = ok({ scheduler: 'EulerDiscreteScheduler', use_karras_sigmas: 'yes', algorithm_type: 'dpmsolver++' });
    expect(r.scheduler).toBe('EulerDiscreteScheduler');
    expect(r.schedulerOverrides).toEqual({ use_karras_sigmas: true, algorithm_type: 'dpmsolver++' });
    expect(ok({ use_karras_sigmas: false }).schedulerOverrides).toEqual({ use_karras_sigmas: false });
    // Not given -> not overridden, so the model's own scheduler config applies.
    expect(ok({ use_karras_sigmas: null, algorithm_type: '' }).schedulerOverrides).toEqual({});
    for (const a of ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver', 'sde-dpmsolver++']) expect(ok({ algorithm_type: a }).schedulerOverrides).toEqual({ algorithm_type: a });
  });

  it('every scheduler the engine supports is accepted', () => {
    const names = supportedSchedulerNames();
    expect(names).toContain('DDIMScheduler');
    expect(names).toContain('EulerDiscreteScheduler');
    for (const name of names) expect(ok({ scheduler: name }).scheduler).toBe(name);
  });

  it('model_id must be one of the known models', () => {
    expect(ok({ model_id: 'tiny-sd-analytic' }).modelId).toBe('tiny-sd-analytic');
    expect(ok({ model_id: null }).modelId).toBeUndefined();
  });

  it('the limits themselves are accepted', () => {
    expect(ok({ width: 64, height: 1024, samples: 4, num_inference_steps: 1, strength: 1, guidance_scale: 20 })).toMatchObject({
      width: 64, height: 1024, samples: 4, steps: 1, strength: 1, guidanceScale: 20,
    });
  });
});

describe('bad values give the field-map error', () => {
  it.each([
    ['width', '4096', /width may not be greater than 1024/],
    ['width', '63', /width must be at least 64/],
    ['width', 'abc', /width must be a number/],
    ['width', true, /width must be a number/],
    ['width', '0x200', /width must be a number/],
    ['width', 512.5, /width must be an integer/],
    ['height', 2000, /height may not be greater than 1024/],
    ['samples', '9', /samples may not be greater than 4/],
    ['samples', 0, /samples must be at least 1/],
    ['samples', '1.5', /samples must be an integer/],
    ['num_inference_steps', 51, /steps may not be greater than 50/],
    ['num_inference_steps', 0, /steps must be at least 1/],
    ['guidance_scale', 21, /guidance scale may not be greater than 20/],
    ['guidance_scale', 0.5, /guidance scale must be 0 .*or between 1 and 20/],
    ['guidance_scale', 'lots', /guidance scale must be a number/],
    ['strength', 2, /strength may not be greater than 1/],
    ['strength', -0.1, /strength must be at least 0/],
    ['seed', -5, /seed must be at least 0/],
    ['seed', 'x', /seed must be a number/],
    ['seed', 1.5, /seed must be an integer/],
    ['webhook', 'ftp://x', /webhook must be a valid http or https URL/],
    ['webhook', 'not a url', /webhook must be a valid http or https URL/],
    ['webhook', 42, /webhook must be a URL/],
    ['safety_checker', 'maybe', /safety checker must be yes or no/],
    ['enhance_prompt', 1, /enhance prompt must be yes or no/],
    ['base64', 'si', /base64 must be yes or no/],
    ['use_karras_sigmas', 'perhaps', /use karras sigmas must be yes or no/],
    ['track_id', {}, /track id must be a string or a number/],
    ['algorithm_type', 'foo', /algorithm type must be one of: dpmsolver, dpmsolver\+\+/],
  ])('%s %j', (field, value, message) => {
    const reasons = errorOn(field, { [field]: value });
    expect(reasons.join(' ')).toMatch(message);
  });

  it('a strength too low for the steps is a strength error that says what would work', () => {
    const [reason] = errorOn('strength', { strength: 0.01, num_inference_steps: 30 });
    expect(reason).toMatch(/strength is too low for 30 steps/);
    expect(reason).toMatch(/0\.034/);
    // strength 0 never runs a step.
    expect(errorOn('strength', { strength: 0 })[0]).toMatch(/too low/);
    // floor(steps * strength) >= 1 is enough, as in diffusers' get_timesteps.
    expect(ok({ strength: 0.1, num_inference_steps: 10 }).strength).toBe(0.1);
    expect(ok({ strength: 0.02, num_inference_steps: 50 }).strength).toBe(0.02);
  });

  it('the least strength it suggests is itself accepted, for every step count', () => {
    for (let steps = 2; steps <= 50; steps++) {
      const [reason] = errorOn('strength', { strength: 0.001, num_inference_steps: steps });
      const least = Number(/use at least ([\d.]+)/.exec(reason)?.[1]);
      expect(least, `steps ${steps}`).toBeGreaterThan(0);
      expect(ok({ strength: least, num_inference_steps: steps }).strength).toBe(least);
    }
  });

  it.each([
    ['missing', undefined, /prompt field is required/],
    ['null', null, /prompt field is required/],
    ['blank', '  ', /prompt field is required/],
    ['a number', 42, /prompt must be a string/],
  ])('prompt %s', (_what, prompt, message) => {
    const request: Record<string, unknown> = { ...BASE, prompt };
    if (prompt === undefined) delete request.prompt;
    const errors = fieldErrors(request);
    expect(Object.keys(errors)).toEqual(['prompt']);
    expect(errors.prompt[0]).toMatch(message);
  });

  it.each([
    ['missing', undefined],
    ['null', null],
    ['empty', ''],
  ])('init_image %s', (_what, initImage) => {
    const request: Record<string, unknown> = { prompt: 'a cat' };
    if (initImage !== undefined) request.init_image = initImage;
    const errors = fieldErrors(request);
    expect(Object.keys(errors)).toEqual(['init_image']);
    expect(errors.init_image[0]).toMatch(/init image field is required/);
  });

  it('an unknown scheduler names the supported ones', () => {
    const [reason] = errorOn('scheduler', { scheduler: 'Nope' });
    expect(reason).toMatch(/Unknown scheduler/);
    for (const name of supportedSchedulerNames()) expect(reason).toContain(name);
  });

  it.each(['KarrasVeScheduler', 'ScoreSdeVeScheduler', 'DDIMInverseScheduler'])('%s (a hosted-API name that cannot sample SD) is refused clearly', (name) => {
    const [reason] = errorOn('scheduler', { scheduler: name });
    expect(reason).toContain(name);
    expect(reason).toMatch(/cannot be used/);
  });

  it('every hosted-API scheduler name that samples SD is accepted', () => {
    const refused = ['DDIMInverseScheduler', 'KarrasVeScheduler', 'ScoreSdeVeScheduler'];
    for (const name of SCHEDULER_NAMES.filter((n) => !refused.includes(n))) expect(ok({ scheduler: name }).scheduler).toBe(name);
  });

  it('an unknown model_id lists the available models', () => {
    const [reason] = errorOn('model_id', { model_id: 'sd-xl-unknown' });
    expect(reason).toContain('sd-xl-unknown');
    expect(reason).toContain('tiny-sd, tiny-sd-analytic');
  });

  it('a seed beyond the exact integers is refused', () => {
    expect(errorOn('seed', { seed: 2 ** 53 })).toHaveLength(1);
  });

  it('a seed whose later samples would pass the exact integers is refused before queueing', () => {
    const max = Number.MAX_SAFE_INTEGER;
    const [reason] = errorOn('seed', { seed: max, samples: 2 });
    expect(reason).toContain(String(max - 1));
    expect(ok({ seed: max - 1, samples: 2 }).seed).toBe(max - 1);
    expect(ok({ seed: max, samples: 1 }).seed).toBe(max);
  });

  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', '__proto__ karras', 'valueOf karras'])(
    'the scheduler name %j is an unknown scheduler, not Object.prototype',
    (name) => {
      expect(errorOn('scheduler', { scheduler: name })[0]).toMatch(/Unknown scheduler/);
    },
  );

  it('several bad fields of the same kind give several keys', () => {
    const errors = fieldErrors({ ...BASE, prompt: '', width: 'abc', samples: 9, webhook: 'ftp://x' });
    expect(Object.keys(errors).sort()).toEqual(['prompt', 'samples', 'webhook', 'width']);
  });

  it('several bad cross-field values give several keys', () => {
    const errors = fieldErrors({ ...BASE, guidance_scale: 0.5, scheduler: 'Nope', algorithm_type: 'foo', model_id: 'zzz', strength: 0.01 });
    expect(Object.keys(errors).sort()).toEqual(['algorithm_type', 'guidance_scale', 'model_id', 'scheduler', 'strength']);
  });

  it('a schema error and a cross-field error at once give both keys', () => {
    const errors = fieldErrors({ ...BASE, width: 'abc', model_id: 'zzz', scheduler: 'Nope' });
    expect(Object.keys(errors).sort()).toEqual(['model_id', 'scheduler', 'width']);
  });
});

describe('non-object requests', () => {
  it.each([null, 'str', [], 5, undefined, true])('%j gives a string message', (request) => {
    const r = validateImg2ImgRequest(request, MODELS) as ErrorResponse;
    expect(r.status).toBe('error');
    expect(typeof r.message).toBe('string');
    expect(r.message).toMatch(/JSON object/);
  });
});

describe('requests that fight back', () => {
  it('a field whose getter throws is a field error, never an exception', () => {
    const request = { ...BASE };
    Object.defineProperty(request, 'width', { enumerable: true, get: () => { throw new Error('boom'); } });
    const r = validateImg2ImgRequest(request, MODELS) as ErrorResponse;
    expect(r).toEqual({ status: 'error', message: { width: ['The width could not be read: boom'] } });
  });

  it('a Proxy whose traps throw is an error response', () => {
    const hostile = new Proxy({}, { ownKeys: () => { throw new Error('no keys for you'); } });
    expect(validateImg2ImgRequest(hostile, MODELS)).toEqual({ status: 'error', message: 'The request could not be read: no keys for you' });
    const getter = new Proxy({ ...BASE }, { get: () => { throw new TypeError('trap'); } });
    const r = validateImg2ImgRequest(getter, MODELS) as ErrorResponse;
    expect(r.status).toBe('error');
    expect(Object.keys(r.message)).toContain('prompt');
  });

  it('reads each field once, so a getter cannot pass validation and then change', () => {
    let reads = 0;
    const request = { ...BASE };
    Object.defineProperty(request, 'width', { enumerable: true, get: () => (reads++ === 0 ? '512' : 'not a number') });
    expect(ok(request).width).toBe(512);
    expect(reads).toBe(1);
  });
});

describe('isErrorResponse', () => {
  it('tells error responses from normalized requests', () => {
    expect(isErrorResponse({ status: 'error', message: 'x' })).toBe(true);
    expect(isErrorResponse(ok({}))).toBe(false);
    expect(isErrorResponse(null)).toBe(false);
    expect(isErrorResponse('error')).toBe(false);
  });
});

describe('AUTOMATIC1111 sampler names', () => {
  it.each([
    ['Euler a', 'EulerAncestralDiscreteScheduler', {}],
    ['DPM++ 2M Karras', 'DPMSolverMultistepScheduler', { use_karras_sigmas: true, algorithm_type: 'dpmsolver++' }],
    ['dpm2 a', 'KDPM2AncestralDiscreteScheduler', {}],
    ['DPM++ SDE', 'DPMSolverSinglestepScheduler', {}],
    ['DPM++ 2M SDE Karras', 'DPMSolverMultistepScheduler', { use_karras_sigmas: true, algorithm_type: 'sde-dpmsolver++' }],
    ['LMS Karras', 'LMSDiscreteScheduler', { use_karras_sigmas: true }],
    [' PLMS ', 'PNDMScheduler', {}],
  ])('%s runs as %s', (name, scheduler, overrides) => {
    const r = validateImg2ImgRequest({ ...BASE, scheduler: name }, MODELS) as NormalizedRequest;
    expect(r.scheduler).toBe(scheduler);
    expect(r.schedulerOverrides).toEqual(overrides);
  });

  it('an explicit modifier wins over the one the name implies', () => {
    const r = validateImg2ImgRequest({ ...BASE, scheduler: 'DPM++ 2M Karras', use_karras_sigmas: 'no' }, MODELS) as NormalizedRequest;
    expect(r.schedulerOverrides.use_karras_sigmas).toBe(false);
  });
});

describe('text2img and inpaint requests', () => {
  it('text2img needs no init image and ignores strength', () => {
    const r = validateRequest('text2img', { prompt: 'a cat', strength: 'not used' }, MODELS) as NormalizedRequest;
    expect(r.mode).toBe('text2img');
    expect(r.initImage).toBeUndefined();
    expect(r.strength).toBe(1);
  });

  it('inpaint needs a mask image', () => {
    const r = validateRequest('inpaint', { ...BASE }, MODELS) as ErrorResponse;
    expect(Object.keys(r.message)).toEqual(['mask_image']);
    const okReq = validateRequest('inpaint', { ...BASE, mask_image: 'https://example.com/mask.png' }, MODELS) as NormalizedRequest;
    expect(okReq.maskImage).toBe('https://example.com/mask.png');
  });

  it('instant_response is an extension flag', () => {
    expect((validateRequest('text2img', { prompt: 'x', instant_response: 'yes' }, MODELS) as NormalizedRequest).instantResponse).toBe(true);
  });
});

describe('outpaint requests (the hosted outpaint call)', () => {
  const outpaint = { key: '', prompt: 'a wider view', image: 'https://example.com/cat.png', width: 768, height: '512', overlap_width: '16', seed: 5 };

  it('takes image, the canvas size and overlap_width, and runs from noise', () => {
    const r = validateRequest('outpaint', outpaint, ['tiny-sd']) as NormalizedRequest;
    expect(isErrorResponse(r)).toBe(false);
    expect(r).toMatchObject({ mode: 'outpaint', initImage: 'https://example.com/cat.png', width: 768, height: 512, overlapWidth: 16, strength: 1 });
  });

  it('defaults overlap_width to 32 and needs an image', () => {
    const { image: _, overlap_width: __, ...rest } = outpaint;
    expect((validateRequest('outpaint', { ...rest, image: 'https://example.com/a.png' }, []) as NormalizedRequest).overlapWidth).toBe(32);
    const missing = validateRequest('outpaint', rest, []) as ErrorResponse;
    expect((missing.message as FieldErrors).image).toEqual(['The image field is required.']);
  });

  it('refuses an overlap outside 0..256', () => {
    const r = validateRequest('outpaint', { ...outpaint, overlap_width: 300 }, []) as ErrorResponse;
    expect((r.message as FieldErrors).overlap_width).toEqual(['The overlap width may not be greater than 256.']);
  });
});
