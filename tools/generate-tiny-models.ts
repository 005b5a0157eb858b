/**
 * Generates the tiny Stable-Diffusion-architecture model sets (tools/tiny-models) and the
 * models.json manifest the app's model store fetches and verifies by.
 *
 *   npx tsx tools/generate-tiny-models.ts [outDir]     (default public/models)
 *
 * Output is a pure function of the code: same bytes on every run and machine.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SET_NAMES, TinyModelFactory } from './tiny-models/sets.ts';
import { generateTaesd } from './taesd.ts';
import { generateEsrgan } from './esrgan.ts';
import { writeHelpers } from './engine-helpers/graphs.ts';

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

export type Manifest = Record<string, { files: ManifestFile[] }>;

export const MANIFEST_NAME = 'models.json';

export async function generateTinyModels(outDir: string): Promise<Manifest> {
  const factory = new TinyModelFactory();
  const manifest: Manifest = {};
  await mkdir(outDir, { recursive: true });
  for (const set of SET_NAMES) {
    const setDir = path.join(outDir, set);
    // stale files from an older generator version must not survive next to a fresh manifest
    await rm(setDir, { recursive: true, force: true });
    const files = factory.setFiles(set);
    for (const file of files) {
      const target = path.join(setDir, ...file.path.split('/'));
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, file.bytes);
    }
    manifest[set] = {
      files: files.map((f) => ({ path: f.path, size: f.bytes.byteLength, sha256: createHash('sha256').update(f.bytes).digest('hex') })),
    };
  }
  await writeFile(path.join(outDir, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

function isMain(): boolean {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
}

if (isMain()) {
  const outDir = path.resolve(process.argv[2] ?? 'public/models');
  const started = performance.now();
  const manifest = await generateTinyModels(outDir);
  // TAESD's preview decoder, converted from the shared fixture when it is there (else removed)
  manifest.taesd = (await generateTaesd(outDir)) ?? { files: [] };
  manifest.esrgan = await generateEsrgan(outDir);
  // the engine's helper graphs for the GPU-resident loop, served beside the models as engine/
  await writeHelpers(path.resolve(outDir, '..', 'engine'));
  for (const [set, { files }] of Object.entries(manifest)) {
    const bytes = files.reduce((sum, f) => sum + f.size, 0);
    console.log(`${set.padEnd(18)} ${String(files.length).padStart(2)} files ${(bytes / 1024).toFixed(1).padStart(8)} KiB`);
  }
  console.log(`wrote ${outDir} in ${((performance.now() - started) / 1000).toFixed(2)} s`);
}
