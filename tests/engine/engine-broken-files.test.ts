/**
 * A model file that does not parse, under onnxruntime-node with the tiny models: when its stored
 * bytes were damaged (the store's chunk overwritten), that file alone is dropped and fetched again
 * and the load succeeds; when the published file itself is broken (it matches its checksum but is
 * not ONNX), the error names the file and its component and nothing is fetched again, ever.
 */
import 'fake-indexeddb/auto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore, get, set } from 'idb-keyval';
import * as ortNode from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import type { EngineProgress } from '../../src/engine/jobs.ts';
import type { OrtModule } from '../../src/engine/runtime.ts';
import { BrokenModelFileError, CorruptCacheError, ModelStore } from '../../src/models/model-store.ts';
import type { ModelSource } from '../../src/models/model-source.ts';
import { sha256Hex } from '../../src/models/sha256.ts';
import { generateTinyModels } from '../../tools/generate-tiny-models.ts';

let dir: string;
let manifest: Record<string, { files: ModelSource['files'] }>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tiny-broken-'));
  manifest = (await generateTinyModels(dir)) as typeof manifest;
});

/** Serves the generated files, with `override` answering for some paths, and counts GETs per path. */
function server(override: Record<string, Uint8Array> = {}) {
  const gets: string[] = [];
  const fn: typeof fetch = async (input) => {
    const path = decodeURIComponent(new URL(String(input)).pathname).replace(/^\/tiny-sd\//, '');
    gets.push(path);
    return new Response((override[path] ?? readFileSync(join(dir, 'tiny-sd', path))) as Uint8Array<ArrayBuffer>);
  };
  return { fn, gets, count: (path: string) => gets.filter((p) => p === path).length };
}

let storeCount = 0;
function setup(files = manifest['tiny-sd'].files, override: Record<string, Uint8Array> = {}) {
  const idb = createStore(`broken-${storeCount++}`, 'files');
  const net = server(override);
  const store = new ModelStore({ fetch: net.fn, store: idb, storage: null });
  const engine = new Engine(ortNode as unknown as OrtModule, store, { backend: 'cpu', reason: 'test', shaderF16: false });
  const source: ModelSource = { id: 'tiny-sd', baseUrl: 'http://models.test/tiny-sd/', files };
  return { idb, net, engine, source };
}

const UNET = 'unet/model.onnx';

describe('a model file that does not parse', () => {
  it('damaged in storage: only that file is fetched again, and the model loads', async () => {
    const { idb, net, engine, source } = setup();
    await engine.loadModel(source);
    await engine.unload();
    // Overwrite the stored UNet (one chunk) with bytes of the same length that are no protobuf:
    // 0x0e is field 1 with wire type 6, which our own graph reader refuses first.
    const key = ['chunk', 'tiny-sd', UNET, 0];
    const stored = (await get<ArrayBuffer>(key, idb))!;
    await set(key, new Uint8Array(stored.byteLength).fill(0x0e).buffer, idb);
    const before = net.gets.length;

    const events: EngineProgress[] = [];
    const info = await engine.loadModel(source, (p) => events.push(p));
    expect(info.id).toBe('tiny-sd');
    expect(net.gets.slice(before)).toEqual([UNET]);
    expect(events.some((e) => e.phase === 'load' && e.message.includes(`${UNET} was damaged in storage`))).toBe(true);
    const out = await engine.generate({ mode: 'text2img', prompt: 'a cat', negativePrompt: '', width: 64, height: 64, samples: 1, steps: 2, guidanceScale: 7.5, seed: 1, schedulerOverrides: {}, safetyChecker: false });
    expect(out.images).toHaveLength(1);
  });

  it.each([
    ['all zeros', new Uint8Array(4096)],
    ['random bytes', Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)],
  ])('broken where it is published (%s, checksum matching): the error names it, and it is never fetched again', async (_what, bytes) => {
    const files = await Promise.all(manifest['tiny-sd'].files.map(async (f) => (f.path === UNET ? { path: UNET, size: bytes.byteLength, sha256: await sha256Hex(bytes) } : f)));
    const { net, engine, source } = setup(files, { [UNET]: bytes });
    for (let attempt = 0; attempt < 2; attempt++) {
      const error = await engine.loadModel(source).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BrokenModelFileError);
      expect(error).not.toBeInstanceOf(CorruptCacheError);
      const message = (error as Error).message;
      expect(message).toContain(`${UNET} (unet)`);
      expect(message).toMatch(/not a valid ONNX model/);
      expect(message).toMatch(/broken in the repository/);
      expect(net.count(UNET)).toBe(1);
    }
    // Every other file was fetched once, too: nothing was discarded.
    for (const f of files) expect(net.count(f.path)).toBe(1);
  });
});
