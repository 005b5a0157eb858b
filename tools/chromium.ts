/** Finds the Chromium that browser tests and benchmarks drive (Debian's by default). */
import { existsSync } from 'node:fs';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function findChromium(): string | null {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : null;
  return CANDIDATES.find((p) => existsSync(p)) ?? null;
}

export const CHROMIUM_HELP =
  'Chromium was not found. On Debian/Ubuntu install it with `sudo apt-get install -y chromium`, ' +
  'or point CHROMIUM_PATH at a Chromium or Chrome binary.';

/** Flags for a headless run on a machine without a GPU: WebGPU through SwiftShader, no background traffic. */
export function chromiumArgs(webgpu: boolean): string[] {
  const common = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
  return webgpu ? [...common, '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'] : common;
}
