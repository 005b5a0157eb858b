/**
 * `npm run audit:lighthouse`: builds the app, serves it on loopback, and prints Lighthouse's
 * accessibility and best-practices scores and the page's installability, each against the 0.95
 * target; exits 1 when one misses it.
 *
 * Lighthouse 12 (pinned: 13 wants Node 22) no longer has a PWA category, so installability is
 * Chromium's own verdict: Page.getInstallabilityErrors over the DevTools protocol, asked after the
 * service worker has taken control (1 when Chromium lists no error, 0 otherwise, with the errors).
 *
 *   npx tsx tools/audit-lighthouse.ts [--json out.json]
 */
import { writeFileSync } from 'node:fs';
import * as chromeLauncher from 'chrome-launcher';
import lighthouse from 'lighthouse';
import { chromium } from 'playwright-core';
import { CHROMIUM_HELP, chromiumArgs, findChromium } from './chromium.ts';
import { buildApp, servePreview } from './bench/server.ts';

const TARGET = 0.95;

interface Figure {
  name: string;
  score: number;
  /** What kept it below 1 (failed audits, installability errors). */
  notes: string[];
}

async function lighthouseScores(url: string, port: number): Promise<Figure[]> {
  const result = await lighthouse(url, { port, output: 'json', logLevel: 'error', onlyCategories: ['accessibility', 'best-practices'] }, {
    extends: 'lighthouse:default',
    settings: { formFactor: 'desktop', screenEmulation: { mobile: false, width: 1280, height: 800, deviceScaleFactor: 1, disabled: false } },
  });
  if (!result) throw new Error('Lighthouse returned no result');
  const { categories, audits } = result.lhr;
  return ['accessibility', 'best-practices'].map((id) => {
    const category = categories[id];
    const failed = category.auditRefs
      .map((ref) => audits[ref.id])
      .filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode !== 'informative' && a.scoreDisplayMode !== 'notApplicable')
      .map((a) => `${a.id}: ${a.title}`);
    return { name: id, score: category.score ?? 0, notes: failed };
  });
}

async function installability(port: number, url: string): Promise<Figure> {
  const browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`);
  try {
    const context = browser.contexts()[0] ?? (await browser.newContext());
    const page = await context.newPage();
    await page.goto(url);
    // The manifest is read at once; the service worker must control the page for Chromium to call it installable.
    await page.waitForFunction(() => navigator.serviceWorker?.controller !== null, undefined, { timeout: 60_000 }).catch(() => undefined);
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = (await cdp.send('Page.getInstallabilityErrors')) as {
      installabilityErrors: { errorId: string; errorArguments: { name: string; value: string }[] }[];
    };
    const notes = installabilityErrors.map((e) => `${e.errorId}${e.errorArguments.length ? ` (${e.errorArguments.map((a) => `${a.name}=${a.value}`).join(', ')})` : ''}`);
    return { name: 'installability', score: notes.length === 0 ? 1 : 0, notes };
  } finally {
    await browser.close().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const chromePath = findChromium();
  if (!chromePath) throw new Error(CHROMIUM_HELP);
  const preview = await servePreview(buildApp({ benchModel: false }));
  const chrome = await chromeLauncher.launch({ chromePath, chromeFlags: ['--headless=new', ...chromiumArgs(false)] });
  let figures: Figure[];
  try {
    figures = [...(await lighthouseScores(preview.url, chrome.port)), await installability(chrome.port, preview.url)];
  } finally {
    chrome.kill();
    preview.stop();
  }
  console.log(`\nLighthouse 12.2.3 on the built app (${preview.url}), target ${TARGET}:`);
  for (const f of figures) {
    console.log(`  ${f.name.padEnd(16)} ${f.score.toFixed(2)}  ${f.score >= TARGET ? 'met' : 'MISSED'}`);
    for (const note of f.notes) console.log(`      ${note}`);
  }
  const jsonAt = process.argv.indexOf('--json');
  if (jsonAt > 0 && process.argv[jsonAt + 1]) writeFileSync(process.argv[jsonAt + 1], `${JSON.stringify(figures, null, 2)}\n`);
  if (figures.some((f) => f.score < TARGET)) process.exitCode = 1;
}

await main();
