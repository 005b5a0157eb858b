import { defineConfig } from '@playwright/test';
import { chromiumArgs, findChromium } from './tools/chromium.ts';
import type { BackendOptions } from './tests/browser/fixtures.ts';

const port = Number(process.env.TEST_PORT ?? 4399);
/** Where tests/browser find the mock hosted API (fixtures.ts reads the same variable). */
const mockPort = Number(process.env.MOCK_API_PORT ?? 4398);
const hubPort = Number(process.env.MOCK_HUB_PORT ?? 4397);
/** The build to serve; parallel runs build into folders of their own (vite build --outDir). */
const distDir = process.env.DIST_DIR ?? 'dist';
const executablePath = findChromium() ?? undefined;
/**
 * No test may need the internet: every host name but localhost fails to resolve, so a request that a test
 * did not serve (page.route, or a loopback server) fails the same on a machine with a connection as on
 * one without (tests/browser/fixtures.ts names such requests).
 */
const offline = '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1';

export default defineConfig<BackendOptions>({
  testDir: 'tests/browser',
  timeout: 240_000,
  expect: { timeout: 30_000 },
  // Two cores: one browser at a time keeps SwiftShader timings sane.
  workers: 1,
  // Never retried: a test that fails once has found something to fix, not something to hide.
  retries: 0,
  fullyParallel: false,
  reporter: process.env.PW_JSON_OUTPUT ? [['list'], ['json', { outputFile: process.env.PW_JSON_OUTPUT }]] : [['list']],
  outputDir: 'test-results/browser',
  use: { baseURL: `http://127.0.0.1:${port}`, trace: 'off', screenshot: 'only-on-failure' },
  projects: [
    {
      name: 'webgpu',
      // The page's own parts (form, gallery, settings, layout) and the API's fault handling behave the same
      // on either backend; on SwiftShader every UNet call takes seconds, so they run in the wasm project only.
      // Outpainting runs as inpainting (img2img.spec covers that on WebGPU) and the remote menu never touches the backend.
      testIgnore: /(ui-(form|gallery|settings|quality|editing)|faults|api-menu-extras)\.spec\.ts$/,
      use: { expectedBackend: 'webgpu', launchOptions: { executablePath, args: [...chromiumArgs(true), offline] } },
    },
    {
      name: 'wasm',
      use: { expectedBackend: 'wasm', launchOptions: { executablePath, args: [...chromiumArgs(false), offline] } },
    },
  ],
  webServer: [
    {
      command: `npx vite preview --port ${port} --strictPort --outDir ${distDir}`,
      url: `http://127.0.0.1:${port}/`,
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      // A stand-in for the Hugging Face hub on loopback (302 to a CDN, X-Linked-* headers, Range), for downloads.
      command: `npx tsx tests/support/mock-hub.ts --port ${hubPort}`,
      url: `http://127.0.0.1:${hubPort}/_manifest`,
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      // A mock of the hosted Stable Diffusion API on loopback, for remote and auto mode.
      command: `npx tsx tests/support/mock-hosted-api.ts --port ${mockPort}`,
      url: `http://127.0.0.1:${mockPort}/`,
      reuseExistingServer: false,
      timeout: 60_000,
    },
  ],
});
