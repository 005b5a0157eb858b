/**
 * `npm test`: every test, in the order a new machine needs them. Generates the tiny models,
 * type-checks, runs the unit tests (vitest, Node), builds the app, and runs the browser tests
 * (Playwright in Debian's Chromium, on WebGPU via SwiftShader and on WASM). Ends with one
 * "N passed, N failed, N skipped" line over both suites.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { CHROMIUM_HELP, findChromium } from './chromium.ts';

const results = 'test-results';
mkdirSync(results, { recursive: true });
const unitJson = `${results}/unit.json`;
const browserJson = `${results}/browser.json`;
rmSync(unitJson, { force: true });
rmSync(browserJson, { force: true });

function step(title: string, command: string, args: string[], env: Record<string, string> = {}): boolean {
  console.log(`\n=== ${title}: ${command} ${args.join(' ')}`);
  const r = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  return r.status === 0;
}

const counts = { passed: 0, failed: 0, skipped: 0 };
let ok = true;

ok = step('Tiny models', 'npx', ['tsx', 'tools/generate-tiny-models.ts']) && ok;
ok = step('Type check', 'npx', ['tsc', '--noEmit']) && ok;
// onnxruntime-node's WebGPU provider finds SwiftShader's Vulkan driver through these (Chromium ships it).
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
const gpuEnv: Record<string, string> = existsSync(swiftshader)
  ? { VK_ICD_FILENAMES: swiftshader, LD_LIBRARY_PATH: ['/usr/lib/chromium', process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') }
  : {};
ok = step('Unit tests', 'npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile=${unitJson}`], gpuEnv) && ok;
if (existsSync(unitJson)) {
  const u = JSON.parse(readFileSync(unitJson, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests: number };
  counts.passed += u.numPassedTests;
  counts.failed += u.numFailedTests;
  counts.skipped += u.numPendingTests + u.numTodoTests;
}

const chromium = findChromium();
if (!chromium) {
  console.error(`\n${CHROMIUM_HELP}\nThe browser tests cannot run without it.`);
  ok = false;
} else {
  ok = step('Build', 'npx', ['vite', 'build', '--logLevel', 'warn']) && ok;
  ok = step('Browser tests', 'npx', ['playwright', 'test'], { PW_JSON_OUTPUT: browserJson }) && ok;
  if (existsSync(browserJson)) {
    const b = JSON.parse(readFileSync(browserJson, 'utf8')) as { stats: { expected: number; unexpected: number; flaky: number; skipped: number } };
    counts.passed += b.stats.expected + b.stats.flaky;
    counts.failed += b.stats.unexpected;
    counts.skipped += b.stats.skipped;
  }
}

console.log(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exit(ok && counts.failed === 0 ? 0 : 1);
