/** Builds the app into a folder of its own and serves it with `vite preview` on a free loopback port. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MANIFEST_NAME, type Manifest } from '../generate-tiny-models.ts';
import { BENCH_SET, ensureBenchModel } from './bench-model.ts';

function run(command: string, args: string[]): void {
  const r = spawnSync(command, args, { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${r.status})`);
}

/**
 * Generates the tiny models (the app serves them), builds into a fresh temporary folder, and adds the
 * bench-sd set from its cache: a symlink, so its ~570 MB are neither copied per build nor seen by vite
 * (vite preview's static server follows symlinks; stop()'s rm removes the link, not the cache), plus
 * its entry in the built models.json.
 */
export async function buildApp(options: { benchModel?: boolean } = {}): Promise<string> {
  run('npx', ['tsx', 'tools/generate-tiny-models.ts']);
  const outDir = mkdtempSync(join(tmpdir(), 'sd-bench-dist-'));
  run('npx', ['vite', 'build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn']);
  if (options.benchModel === false) return outDir;
  const bench = await ensureBenchModel();
  await symlink(bench.dir, join(outDir, 'models', BENCH_SET), 'dir');
  const manifestPath = join(outDir, 'models', MANIFEST_NAME);
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  manifest[BENCH_SET] = { files: bench.files };
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return outDir;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface Preview {
  url: string;
  stop(): void;
}

/** Takes buildApp()'s promise as well, so that `servePreview(buildApp())` reads as before. */
export async function servePreview(outDirOrBuild: string | Promise<string>): Promise<Preview> {
  const outDir = await outDirOrBuild;
  const port = await freePort();
  // detached: its own process group, so stop() ends npx and the vite it starts, and nothing else.
  const child: ChildProcess = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort', '--outDir', outDir], {
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  const url = `http://127.0.0.1:${port}/`;
  const stop = () => {
    if (child.pid && child.exitCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    rmSync(outDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(url)).ok) return { url, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  stop();
  throw new Error(`vite preview did not answer on ${url}`);
}
