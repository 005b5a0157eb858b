/**
 * The settings dialog: mode, key, endpoint and theme persist across a reload; the key is masked by
 * default and never appears in a URL the page requests; remote mode set through the dialog takes
 * effect after the reload; ?mode= overrides the stored mode for one visit; the header shows the
 * backend, why, and whether the adapter has shader-f16.
 */
import type { Page } from '@playwright/test';
import { MOCK_API, MOCK_KEY, expect, openApp, sdapiCall, test } from './fixtures.ts';

const text2img = (overrides: Record<string, unknown> = {}) => ({
  key: '', prompt: 'a lighthouse at dusk', negative_prompt: null, width: '64', height: '64', samples: '1',
  num_inference_steps: '2', guidance_scale: 7.5, seed: 3, safety_checker: 'no', enhance_prompt: 'no', webhook: null, track_id: null, ...overrides,
});

/** Every URL any page, worker or service worker of the context asks for. */
function recordUrls(page: Page): string[] {
  const urls: string[] = [];
  page.context().on('request', (r) => urls.push(r.url()));
  return urls;
}

async function waitReady(page: Page): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, undefined, { timeout: 120_000 });
  expect(await page.evaluate(() => document.body.dataset.ready), await page.locator('#backend').innerText()).toBe('true');
}

const dialog = (page: Page) => page.locator('#settings-dialog');

test.describe('settings dialog', () => {
  test('remote mode, endpoint and key set in the dialog take effect after a reload; the key stays out of URLs', async ({ page, expectedBackend }) => {
    const urls = recordUrls(page);
    await openApp(page, expectedBackend, 'tiny-sd');
    await expect(page.locator('#backend')).toContainText(/shader-f16: (yes|no)/);

    await page.locator('#open-settings').click();
    await expect(dialog(page)).toBeVisible();
    // Default: auto mode, no key, the default endpoint, the system theme.
    await expect(dialog(page).getByLabel('Auto')).toBeChecked();
    await expect(dialog(page).getByLabel('System')).toBeChecked();
    const key = dialog(page).getByLabel('API key');
    await expect(key).toHaveAttribute('type', 'password');
    await key.fill(MOCK_KEY);
    await dialog(page).getByRole('button', { name: 'Show key' }).click();
    await expect(key).toHaveAttribute('type', 'text');
    await dialog(page).getByRole('button', { name: 'Hide key' }).click();
    await expect(key).toHaveAttribute('type', 'password');
    await dialog(page).getByLabel('Remote').check();
    await dialog(page).getByLabel('Endpoint').fill(MOCK_API);
    await expect(dialog(page)).toContainText('take effect when the page reloads');

    await Promise.all([page.waitForEvent('load'), dialog(page).getByRole('button', { name: 'Save and reload' }).click()]);
    await waitReady(page);
    await expect(page.locator('#backend')).toContainText('Backend: REMOTE');
    await expect(page.locator('#backend')).toContainText('Settings');
    const r = await sdapiCall(page, 'text2img', text2img());
    expect(r.status, JSON.stringify(r.message)).toBe('success');
    expect(r.meta!.runtime).toBe('remote');

    // Reopened after the reload, the dialog shows what was stored, with the key masked again.
    await page.locator('#open-settings').click();
    await expect(dialog(page).getByLabel('Remote')).toBeChecked();
    await expect(dialog(page).getByLabel('Endpoint')).toHaveValue(MOCK_API);
    await expect(key).toHaveValue(MOCK_KEY);
    await expect(key).toHaveAttribute('type', 'password');
    await page.keyboard.press('Escape');
    await expect(dialog(page)).toBeHidden();
    await expect(page.locator('#open-settings')).toBeFocused();

    expect(urls.length).toBeGreaterThan(0);
    expect(urls.filter((u) => u.includes(MOCK_KEY))).toEqual([]);
    expect(urls.filter((u) => u.startsWith(MOCK_API)).length).toBeGreaterThan(0);
    const mockSaw = (await (await fetch(`${MOCK_API}/_requests`)).json()) as { path: string }[];
    expect(mockSaw.some((q) => q.path.includes(MOCK_KEY))).toBe(false);
  });

  test('?mode= overrides the stored mode for that visit only, and the dialog says so', async ({ page, expectedBackend }) => {
    await page.addInitScript(([api]) => {
      // Only on the first load, so the test can see the stored value survive the overridden visit.
      if (!sessionStorage.getItem('seeded')) {
        localStorage.setItem('sdapi.mode', 'remote');
        localStorage.setItem('sdapi.endpoint', api);
        sessionStorage.setItem('seeded', '1');
      }
    }, [MOCK_API]);
    await openApp(page, expectedBackend, { mode: 'local' });
    await expect(page.locator('#backend')).toContainText(`Backend: ${expectedBackend.toUpperCase()}`);
    await page.locator('#open-settings').click();
    await expect(dialog(page).getByLabel('Remote')).toBeChecked();
    await expect(dialog(page).locator('#settings-overrides')).toContainText('mode=local');
    await dialog(page).getByRole('button', { name: 'Cancel' }).click();
    await page.goto('/?model=tiny-sd');
    await waitReady(page);
    await expect(page.locator('#backend')).toContainText('Backend: REMOTE');
  });

  test('the theme applies at once and persists; a bad endpoint is refused', async ({ page, expectedBackend }) => {
    await openApp(page, expectedBackend, 'tiny-sd');
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.locator('#open-settings').click();
    await dialog(page).getByLabel('Dark').check();
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
    expect(await bg()).toBe('rgb(20, 22, 26)');
    await dialog(page).getByLabel('Light').check();
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
    expect(await bg()).toBe('rgb(246, 247, 249)');
    await dialog(page).getByLabel('Dark').check();

    await dialog(page).getByLabel('Endpoint').fill('ftp://example.test');
    await dialog(page).getByRole('button', { name: 'Save', exact: true }).click();
    await expect(dialog(page)).toBeVisible();
    await expect(dialog(page).locator('#settings-endpoint-error')).toContainText('http');
    await expect(dialog(page).getByLabel('Endpoint')).toHaveAttribute('aria-invalid', 'true');
    await dialog(page).getByRole('button', { name: 'Cancel' }).click();

    await page.reload();
    await waitReady(page);
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
    expect(await bg()).toBe('rgb(20, 22, 26)');
    expect(await page.evaluate(() => localStorage.getItem('sdapi.endpoint'))).toBeNull();
    await page.locator('#open-settings').click();
    await dialog(page).getByLabel('System').check();
    await expect(page.locator('html')).not.toHaveAttribute('data-theme', /.+/);
    expect(await page.evaluate(() => localStorage.getItem('sdapi.theme'))).toBeNull();
  });
});

test.describe('the API key', () => {
  /** A server a link could name: every request to it is answered by the test and recorded. */
  const ATTACKER = 'http://attacker.test:4391';
  async function recordAttacker(page: Page): Promise<string[]> {
    const bodies: string[] = [];
    await page.context().route(`${ATTACKER}/**`, async (route) => {
      bodies.push(route.request().postData() ?? '');
      await route.fulfill({ status: 200, contentType: 'application/json', headers: { 'Access-Control-Allow-Origin': '*' }, body: JSON.stringify({ status: 'error', message: 'recorded' }) });
    });
    return bodies;
  }
  const SAVED = 'saved-key-never-to-leak';

  test("remote mode sends the request's own key, with no key saved", async ({ page, expectedBackend }) => {
    await openApp(page, expectedBackend, { mode: 'remote', endpoint: MOCK_API });
    const r = await sdapiCall(page, 'text2img', text2img({ key: MOCK_KEY }));
    expect(r.status, JSON.stringify(r.message)).toBe('success');
    expect(r.meta!.runtime).toBe('remote');
    await expect(page.locator('#endpoint-banner')).toBeHidden();
  });

  test("a link's endpoint never receives the saved key until the user allows it for the visit", async ({ page, expectedBackend }) => {
    const seen = await recordAttacker(page);
    await page.addInitScript(([key, api]) => {
      localStorage.setItem('sdapi.key', key);
      localStorage.setItem('sdapi.endpoint', api);
    }, [SAVED, MOCK_API]);
    await openApp(page, expectedBackend, { mode: 'remote', endpoint: ATTACKER });
    // The page names the endpoint in use and says the key is held back.
    await expect(page.locator('#backend')).toContainText('attacker.test:4391');
    await expect(page.locator('#backend')).toContainText('held back');
    const banner = page.locator('#endpoint-banner');
    await expect(banner).toBeVisible();
    await expect(banner).toContainText('attacker.test:4391');
    await page.screenshot({ path: `test-results/screenshots/endpoint-banner-${expectedBackend}.png` });

    const refused = await sdapiCall(page, 'text2img', text2img());
    expect(refused).toMatchObject({ status: 'error' });
    expect(String(refused.message)).toMatch(/API key is needed/);
    expect(seen).toEqual([]);
    // A request's own key is the caller's to send wherever the client points.
    await sdapiCall(page, 'text2img', text2img({ key: 'callers-own' }));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toContain('callers-own');

    await banner.getByRole('button', { name: /for this visit/ }).click();
    await expect(banner).toBeHidden();
    await expect(page.locator('#backend')).not.toContainText('held back');
    await sdapiCall(page, 'text2img', text2img());
    expect(seen).toHaveLength(2);
    expect(seen[1]).toContain(SAVED);

    // The permission was for that visit only: a reload asks again.
    await page.reload();
    await waitReady(page);
    await expect(banner).toBeVisible();
    await sdapiCall(page, 'text2img', text2img());
    expect(seen).toHaveLength(2);
    expect(seen.slice(0, 1).concat(seen.slice(2)).some((b) => b.includes(SAVED))).toBe(false);
  });

  test("in auto mode ?endpoint= alone does not get the saved key on a fallback; 'Use … instead' drops it", async ({ page, expectedBackend }) => {
    const seen = await recordAttacker(page);
    await page.addInitScript(([key]) => localStorage.setItem('sdapi.key', key), [SAVED]);
    await openApp(page, expectedBackend, { endpoint: ATTACKER });
    await expect(page.locator('#backend')).toContainText('the hosted API at attacker.test:4391');
    // An unknown model makes auto mode look for the hosted API.
    const r = await sdapiCall(page, 'text2img', text2img({ model_id: 'sdxl-somewhere' }));
    expect(r.status).toBe('error');
    expect(seen).toEqual([]);
    await Promise.all([page.waitForEvent('load'), page.locator('#endpoint-banner').getByRole('button', { name: /instead/ }).click()]);
    await waitReady(page);
    expect(new URL(page.url()).searchParams.has('endpoint')).toBe(false);
    await expect(page.locator('#endpoint-banner')).toBeHidden();
    await expect(page.locator('#backend')).toContainText('stablediffusionapi.com');
  });
});
