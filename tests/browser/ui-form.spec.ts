/**
 * The generate form in the built app: the three modes from their tabs, the init image from a
 * picked file, the mask editor's PNG (exactly where painted), presets, seed buttons, reuse via
 * load(), and the keyboard (Ctrl+Enter generates, Esc cancels). Sizes are tiny and steps few.
 */
import { mkdirSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { encode } from 'fast-png';
import { bytesOf, decodePng, expect, openApp, test, type Pixels } from './fixtures.ts';

interface Call {
  endpoint: string;
  request: Record<string, unknown>;
  response: { status: string; output?: string[]; meta?: Record<string, unknown>; message?: unknown };
}

declare global {
  interface Window {
    __calls?: Call[];
    __cancels?: number;
    __cancelAccepted?: boolean;
  }
}

const W = 96;
const H = 64;
mkdirSync('test-results/screenshots', { recursive: true });

/** An RGB gradient PNG, made here so that the test needs no fixture. */
function gradientPng(width: number, height: number): Buffer {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.round((255 * x) / (width - 1));
      data[i + 1] = Math.round((255 * y) / (height - 1));
      data[i + 2] = 128;
    }
  }
  return Buffer.from(encode({ width, height, data, channels: 3 }));
}

/** Records every generate call and cancel the page makes through window.sdapi. */
async function recordCalls(page: Page): Promise<void> {
  await page.evaluate(() => {
    const api = window.sdapi as unknown as Record<string, (r: unknown) => Promise<unknown>>;
    window.__calls = [];
    window.__cancels = 0;
    for (const name of ['text2img', 'img2img', 'inpaint']) {
      const original = api[name].bind(api);
      api[name] = async (request: unknown) => {
        const response = await original(request);
        window.__calls!.push({ endpoint: name, request: request as Record<string, unknown>, response: response as Call['response'] });
        return response;
      };
    }
    const client = window.sdapi as unknown as { cancel(id?: number): boolean };
    const cancel = client.cancel.bind(client);
    client.cancel = (id?: number) => {
      window.__cancels!++;
      const accepted = cancel(id);
      window.__cancelAccepted = accepted;
      return accepted;
    };
  });
}

const calls = (page: Page) => page.evaluate(() => window.__calls ?? []);
const readForm = (page: Page) => page.evaluate(() => window.sdForm!.read());

/** Grey value of each pixel (the masks are greyscale; RGB ones are read by their red channel). */
const grey = (img: Pixels, x: number, y: number) => img.data[(y * img.width + x) * img.channels];

async function maskOfForm(page: Page): Promise<Pixels> {
  const { request } = await readForm(page);
  expect(String(request.mask_image)).toMatch(/^blob:/);
  return decodePng(await bytesOf(page, String(request.mask_image)));
}

function expectRect(mask: Pixels, x0: number, y0: number, x1: number, y1: number, inverted = false): void {
  expect([mask.width, mask.height]).toEqual([W, H]);
  let wrong = 0;
  for (let y = 0; y < mask.height; y++) {
    for (let x = 0; x < mask.width; x++) {
      const inside = x >= x0 && x < x1 && y >= y0 && y < y1;
      if (grey(mask, x, y) !== (inside !== inverted ? 255 : 0)) wrong++;
    }
  }
  expect(wrong, 'pixels off the painted rectangle').toBe(0);
}

/** Client coordinates of an image-pixel position on the mask canvas. */
async function canvasPoint(page: Page, x: number, y: number): Promise<{ x: number; y: number }> {
  await page.locator('#mask-canvas').scrollIntoViewIfNeeded();
  const box = (await page.locator('#mask-canvas').boundingBox())!;
  return { x: box.x + (x * box.width) / W, y: box.y + (y * box.height) / H };
}

async function drag(page: Page, from: [number, number], to: [number, number]): Promise<void> {
  const a = await canvasPoint(page, ...from);
  const b = await canvasPoint(page, ...to);
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move(b.x, b.y, { steps: 6 });
  await page.mouse.up();
}

async function pickFile(page: Page): Promise<void> {
  await page.setInputFiles('#init_file', { name: 'gradient.png', mimeType: 'image/png', buffer: gradientPng(W, H) });
  await expect(page.locator('#init-preview')).toBeVisible();
  await expect(page.locator('#init-caption')).toContainText(`${W}×${H}`);
}

async function setSmall(page: Page, steps = '2'): Promise<void> {
  await page.fill('#width', String(W));
  await page.fill('#height', String(H));
  await page.fill('#num_inference_steps', steps);
  await page.fill('#seed', '11');
}

async function generateAndWait(page: Page, count: number): Promise<Call> {
  await page.click('#generate');
  await expect.poll(async () => (await calls(page)).length, { timeout: 120_000 }).toBe(count);
  const call = (await calls(page))[count - 1];
  expect(call.response.status, JSON.stringify(call.response.message)).toBe('success');
  await expect(page.locator('#generate')).toBeEnabled();
  return call;
}

test.describe('the generate form', () => {
  test.describe.configure({ mode: 'serial' });
  let page: Page;
  test.beforeAll(async ({ browser, expectedBackend }) => {
    page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    page.on('console', (m) => { if (m.type() === 'error') console.log(`[page] ${m.text()}`); });
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
    await openApp(page, expectedBackend, 'tiny-sd');
    await recordCalls(page);
  });
  test.afterAll(async () => page?.close());

  test('mode tabs work from the keyboard and read() carries only that mode\'s fields', async () => {
    await expect(page.locator('[role="tablist"] [role="tab"]')).toHaveCount(5);
    await expect(page.locator('#mode-img2img')).toHaveAttribute('aria-selected', 'true');
    await page.focus('#mode-img2img');
    await page.keyboard.press('ArrowRight');
    await expect(page.locator('#mode-inpaint')).toHaveAttribute('aria-selected', 'true');
    await expect(page.locator('#mode-inpaint')).toBeFocused();
    await expect(page.locator('#mask-editor')).toBeVisible();
    expect((await readForm(page)).endpoint).toBe('inpaint');
    expect(Object.keys((await readForm(page)).request)).toEqual(expect.arrayContaining(['init_image', 'mask_image', 'strength']));

    await page.keyboard.press('End');
    await page.keyboard.press('ArrowRight'); // wraps around
    await expect(page.locator('#mode-text2img')).toHaveAttribute('aria-selected', 'true');
    await expect(page.locator('#init-fieldset')).toBeHidden();
    await expect(page.locator('#strength')).toBeHidden();
    const t2i = await readForm(page);
    expect(t2i.endpoint).toBe('text2img');
    for (const k of ['init_image', 'mask_image', 'strength']) expect(t2i.request).not.toHaveProperty(k);
    expect(t2i.request).toMatchObject({ key: '', prompt: 'a cat sitting on a bench', safety_checker: 'no', enhance_prompt: 'no', base64: 'no', webhook: null, track_id: null });

    await page.keyboard.press('End');
    await expect(page.locator('#mode-upscale')).toHaveAttribute('aria-selected', 'true');
    await page.keyboard.press('Home');
    await page.keyboard.press('ArrowRight');
    await expect(page.locator('#mode-img2img')).toHaveAttribute('aria-selected', 'true');
    const i2i = await readForm(page);
    expect(i2i.endpoint).toBe('img2img');
    expect(i2i.request).toHaveProperty('init_image');
    expect(i2i.request).toHaveProperty('strength', 0.7);
    expect(i2i.request).not.toHaveProperty('mask_image');
    // Tab from the selected tab goes into the panel, to the prompt.
    await page.keyboard.press('Tab');
    await expect(page.locator('#prompt')).toBeFocused();
  });

  test('size presets set width and height; other sizes read as custom', async () => {
    await page.selectOption('#size-preset', '768x512');
    await expect(page.locator('#width')).toHaveValue('768');
    await expect(page.locator('#height')).toHaveValue('512');
    await page.selectOption('#size-preset', '512x768');
    expect((await readForm(page)).request).toMatchObject({ width: '512', height: '768' });
    await page.selectOption('#size-preset', '1024x1024');
    await expect(page.locator('#width')).toHaveValue('1024');
    await page.fill('#width', '96');
    await expect(page.locator('#size-preset')).toHaveValue('custom');
    await page.fill('#width', '512');
    await page.fill('#height', '512');
    await expect(page.locator('#size-preset')).toHaveValue('512x512');
  });

  test('every field reaches the request; the scheduler list is the API\'s', async () => {
    await page.fill('#negative_prompt', 'blurry');
    await page.fill('#samples', '2');
    await page.fill('#guidance_scale', '5.5');
    await page.fill('#strength', '0.45');
    await page.fill('#seed', '1234');
    await page.selectOption('#scheduler', 'EulerAncestralDiscreteScheduler');
    await page.check('#use_karras_sigmas');
    await page.check('#enhance_prompt');
    await page.check('#safety_checker');
    expect((await readForm(page)).request).toMatchObject({
      negative_prompt: 'blurry', samples: '2', guidance_scale: 5.5, strength: 0.45, seed: 1234,
      scheduler: 'EulerAncestralDiscreteScheduler', use_karras_sigmas: 'yes', enhance_prompt: 'yes', safety_checker: 'yes',
    });
    const options = await page.locator('#scheduler option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options[0]).toBe('');
    expect(options).toEqual(expect.arrayContaining(['DDIMScheduler', 'DPMSolverMultistepScheduler', 'LCMScheduler']));
    // Put it back for the generating tests.
    await page.selectOption('#scheduler', '');
    for (const id of ['#use_karras_sigmas', '#enhance_prompt', '#safety_checker']) await page.uncheck(id);
    await page.fill('#negative_prompt', '');
    await page.fill('#samples', '1');
    await page.fill('#guidance_scale', '7.5');
    await page.fill('#strength', '0.7');
    expect((await readForm(page)).request).not.toHaveProperty('scheduler');
    // The advanced panel collapses.
    await page.click('#advanced summary');
    await expect(page.locator('#seed')).toBeHidden();
    await page.click('#advanced summary');
    await expect(page.locator('#seed')).toBeVisible();
  });

  test('text2img from the form', async () => {
    await page.click('#mode-text2img');
    await setSmall(page);
    const call = await generateAndWait(page, 1);
    expect(call.endpoint).toBe('text2img');
    expect(call.request).toMatchObject({ width: String(W), height: String(H), num_inference_steps: '2', seed: 11 });
    expect(call.request).not.toHaveProperty('init_image');
    const dims = await page.locator('#results img').first().evaluate((img: HTMLImageElement) => img.decode().then(() => [img.naturalWidth, img.naturalHeight]));
    expect(dims).toEqual([W, H]);
    await page.screenshot({ path: 'test-results/screenshots/mode-text2img.png', fullPage: true });
  });

  test('the random seed button, and reusing the last seed in one click', async () => {
    await page.click('#seed-random');
    await expect(page.locator('#seed')).toHaveValue('');
    expect((await readForm(page)).request.seed).toBeNull();
    const call = await generateAndWait(page, 2);
    const used = call.response.meta!.seed as number;
    expect(Number.isInteger(used)).toBe(true);
    // The page hands each result to the form (main.ts); doing it here too keeps this test about the form.
    await page.evaluate((c) => window.sdForm!.showResult(c.response as never), call);
    await expect(page.locator('#seed-reuse')).toContainText(String(used));
    await page.click('#seed-reuse');
    await expect(page.locator('#seed')).toHaveValue(String(used));
    const again = await generateAndWait(page, 3);
    expect(again.response.meta!.seed).toBe(used);
  });

  test('img2img from a picked file', async () => {
    await page.click('#mode-img2img');
    await pickFile(page);
    await setSmall(page);
    const call = await generateAndWait(page, 4);
    expect(call.endpoint).toBe('img2img');
    expect(String(call.request.init_image)).toMatch(/^blob:/);
    expect(call.request.strength).toBe(0.7);
    expect(call.response.meta!.W).toBe(W);
    await expect(page.locator('#init_image')).toHaveValue('');
    await page.screenshot({ path: 'test-results/screenshots/mode-img2img.png', fullPage: true });
  });

  test('inpaint: the mask the API receives is white exactly where painted; invert, undo and clear', async () => {
    await page.click('#mode-inpaint');
    await expect(page.locator('#mask-stage')).toBeVisible();
    expect(await page.locator('#mask-canvas').evaluate((c: HTMLCanvasElement) => [c.width, c.height])).toEqual([W, H]);
    await page.check('#mask-tool-rect');
    await drag(page, [16, 8], [56, 40]);
    expectRect(await maskOfForm(page), 16, 8, 56, 40);
    await expect(page.locator('#mask-status')).toContainText('% of the image will be repainted');

    await page.click('#mask-invert');
    expectRect(await maskOfForm(page), 16, 8, 56, 40, true);
    await page.click('#mask-undo');
    expectRect(await maskOfForm(page), 16, 8, 56, 40);
    await page.click('#mask-clear');
    expect((await maskOfForm(page)).data.every((v) => v === 0)).toBe(true);
    // An all-black mask would change nothing: the form says so instead of queueing a job.
    await page.click('#generate');
    await expect(page.locator('#form-message')).toContainText('Paint the part');
    await page.click('#mask-undo');
    expectRect(await maskOfForm(page), 16, 8, 56, 40);
    await page.screenshot({ path: 'test-results/screenshots/mode-inpaint.png', fullPage: true });

    await setSmall(page);
    const call = await generateAndWait(page, 5);
    expect(call.endpoint).toBe('inpaint');
    const sent = decodePng(await bytesOf(page, String(call.request.mask_image)));
    expectRect(sent, 16, 8, 56, 40);
    // a blob: URL dies with its page, so meta names it rather than repeating it (the history keeps the bytes)
    expect(call.response.meta!.mask_image).toMatch(/^inline image \(a blob: URL of the page that sent it/);
  });

  test('inpaint: brush, brush size, eraser and touch strokes', async () => {
    await page.click('#mask-clear');
    await page.check('#mask-tool-brush');
    await page.locator('#mask-brush-size').evaluate((el: HTMLInputElement) => {
      el.value = '8';
      el.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await expect(page.locator('#mask-brush-size-value')).toHaveText('8 px');
    await drag(page, [10, 50], [80, 50]);
    let mask = await maskOfForm(page);
    expect(grey(mask, 45, 50)).toBe(255);
    expect(grey(mask, 45, 47)).toBe(255);
    expect(grey(mask, 45, 44)).toBe(0); // more than the radius (4) above the stroke
    expect(grey(mask, 4, 50)).toBe(0);

    await page.check('#mask-tool-eraser');
    await drag(page, [40, 50], [50, 50]);
    mask = await maskOfForm(page);
    expect(grey(mask, 45, 50)).toBe(0);
    expect(grey(mask, 20, 50)).toBe(255);

    // A finger: pointer events of type "touch" paint too.
    await page.check('#mask-tool-brush');
    const a = await canvasPoint(page, 70, 12);
    const b = await canvasPoint(page, 90, 12);
    await page.locator('#mask-canvas').evaluate((canvas, [p, q]) => {
      const fire = (type: string, at: { x: number; y: number }) => canvas.dispatchEvent(new PointerEvent(type, {
        pointerId: 7, pointerType: 'touch', isPrimary: true, clientX: at.x, clientY: at.y, bubbles: true, cancelable: true,
      }));
      fire('pointerdown', p);
      fire('pointermove', { x: (p.x + q.x) / 2, y: p.y });
      fire('pointermove', q);
      fire('pointerup', q);
    }, [a, b] as const);
    mask = await maskOfForm(page);
    expect(grey(mask, 80, 12)).toBe(255);
    expect(grey(mask, 80, 20)).toBe(0);
    // Undo takes back the whole touch stroke at once.
    await page.click('#mask-undo');
    expect(grey(await maskOfForm(page), 80, 12)).toBe(0);
  });

  test('Ctrl+Enter generates; Esc cancels the running job', async () => {
    await page.click('#mode-text2img');
    await setSmall(page);
    const before = (await calls(page)).length;
    await page.focus('#prompt');
    await page.keyboard.press('Control+Enter');
    await expect.poll(async () => (await calls(page)).length, { timeout: 120_000 }).toBe(before + 1);
    await expect(page.locator('#generate')).toBeEnabled();
    // Esc with nothing running does nothing.
    await page.keyboard.press('Escape');
    expect(await page.evaluate(() => window.__cancels)).toBe(0);

    // A job long enough to be cancelled mid-way.
    await page.fill('#width', '512');
    await page.fill('#height', '512');
    await page.fill('#num_inference_steps', '50');
    // The keys work wherever the focus is, not only in the form.
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.keyboard.press('Control+Enter');
    await expect(page.locator('#cancel')).toBeEnabled();
    // sdapi.cancel() with no id stops the running job; wait until it runs (denoising has begun).
    await expect(page.locator('#job-status')).toContainText(/step \d+ of 50/);
    await page.keyboard.press('Escape');
    expect(await page.evaluate(() => window.__cancels)).toBe(1);
    // The running job took the cancel.
    expect(await page.evaluate(() => window.__cancelAccepted)).toBe(true);
    await expect.poll(async () => (await calls(page)).length, { timeout: 120_000 }).toBe(before + 2);
    const last = (await calls(page))[before + 1];
    expect(last.response.status).toBe('error');
    expect(String(last.response.message)).toMatch(/cancelled/);
    await expect(page.locator('#job-status')).toContainText('cancelled');
    await expect(page.locator('#generate')).toBeEnabled();
    await expect(page.locator('#cancel')).toBeDisabled();
  });

  test('load() fills every control from a request, the mask included; useInitImage switches to img2img', async () => {
    const image = `data:image/png;base64,${gradientPng(W, H).toString('base64')}`;
    const maskData = new Uint8Array(W * H);
    for (let y = 4; y < 20; y++) maskData.fill(255, y * W + 8, y * W + 30);
    const mask = `data:image/png;base64,${Buffer.from(encode({ width: W, height: H, data: maskData, channels: 1 })).toString('base64')}`;
    const request = {
      key: '', prompt: 'a red mountain painting', negative_prompt: 'fog', init_image: image, mask_image: mask,
      width: '768', height: '512', samples: '3', num_inference_steps: '12', safety_checker: 'yes', enhance_prompt: 'yes',
      guidance_scale: 4, strength: 0.35, seed: 99, webhook: null, track_id: null,
      scheduler: 'DDIMScheduler', use_karras_sigmas: 'yes',
    };
    await page.evaluate((r) => window.sdForm!.load('inpaint', r), request);
    await expect(page.locator('#mode-inpaint')).toHaveAttribute('aria-selected', 'true');
    await expect(page.locator('#prompt')).toHaveValue('a red mountain painting');
    await expect(page.locator('#size-preset')).toHaveValue('768x512');
    await expect(page.locator('#scheduler')).toHaveValue('DDIMScheduler');
    await expect(page.locator('#enhance_prompt')).toBeChecked();
    await expect(page.locator('#init-preview')).toBeVisible();
    await expect(page.locator('#mask-status')).toContainText('repainted');
    const { endpoint, request: back } = await readForm(page);
    expect(endpoint).toBe('inpaint');
    const { mask_image: maskBack, base64, ...rest } = back;
    const { mask_image: _m, ...expected } = request;
    expect(rest).toEqual(expected);
    expect(base64).toBe('no');
    expectRect(decodePng(await bytesOf(page, String(maskBack))), 8, 4, 30, 20);

    // A text2img request leaves out what it does not have: no seed is a random seed.
    await page.evaluate(() => window.sdForm!.load('text2img', { prompt: 'x', seed: null, enhance_prompt: 'no' }));
    await expect(page.locator('#mode-text2img')).toHaveAttribute('aria-selected', 'true');
    expect((await readForm(page)).request).toMatchObject({ prompt: 'x', seed: null, enhance_prompt: 'no' });

    await page.evaluate((url) => window.sdForm!.useInitImage(url), image);
    await expect(page.locator('#mode-img2img')).toHaveAttribute('aria-selected', 'true');
    expect((await readForm(page)).request.init_image).toBe(image);
  });

  test('an image pasted or dropped becomes the init image; a typed URL too', async () => {
    await page.click('#mode-text2img');
    const b64 = gradientPng(W, H).toString('base64');
    await page.evaluate((data) => {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, b64);
    await expect(page.locator('#mode-img2img')).toHaveAttribute('aria-selected', 'true');
    await expect(page.locator('#init-caption')).toContainText('Pasted image');
    expect(String((await readForm(page)).request.init_image)).toMatch(/^blob:/);

    await page.locator('#init-fieldset').evaluate((zone, data) => {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, b64);
    await expect(page.locator('#init-caption')).toContainText('dropped.png');

    const url = 'https://example.test/typed.png';
    await page.route(url, (route) => route.fulfill({ status: 200, body: gradientPng(32, 48), contentType: 'image/png', headers: { 'Access-Control-Allow-Origin': '*' } }));
    await page.fill('#init_image', url);
    expect((await readForm(page)).request.init_image).toBe(url);
    await expect(page.locator('#init-caption')).toContainText('32×48');
    await page.click('#init-clear');
    expect((await readForm(page)).request.init_image).toBeNull();
    await page.click('#generate');
    await expect(page.locator('#form-message')).toContainText('Give an init image');
  });
});
