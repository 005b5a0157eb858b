/**
 * ModelManager.download and the order of what crosses from the worker: progress travels on a
 * MessagePort of its own (Comlink.proxy), the result on the worker's, and the two are not ordered,
 * so a progress event can arrive after the result. Seen in models.spec as a finished download whose
 * status line went back to "N of N bytes (last file)" and stayed there.
 */
import { describe, expect, it } from 'vitest';
import { ModelManager } from '../../src/api/model-manager.ts';
import type { ModelManagementApi } from '../../src/engine/worker-api.ts';
import type { CatalogueEntry } from '../../src/models/catalogue.ts';
import type { DownloadProgress } from '../../src/models/model-source.ts';

const ENTRY = {
  id: 'm',
  name: 'm',
  description: 'test model',
  source: { id: 'm', baseUrl: 'http://127.0.0.1:1/m/', files: [{ path: 'unet/model.onnx' }] },
} as unknown as CatalogueEntry;

const event = (loaded: number): DownloadProgress => ({
  modelId: 'm', file: 'unet/model.onnx', loaded, total: 10, fromCache: false, bytesPerSecond: 1, etaSeconds: 0, modelLoaded: loaded, modelTotal: 10,
});

/** A worker whose last progress event is delivered one task after its result, as a port message can be. */
function workerWithLateProgress(): ModelManagementApi {
  return {
    async downloadModel(_source, onProgress) {
      onProgress?.(event(5));
      setTimeout(() => onProgress?.(event(10)), 0);
      return { ok: true, value: undefined };
    },
  } as Partial<ModelManagementApi> as ModelManagementApi;
}

describe('ModelManager.download', () => {
  it('passes on no progress event that arrives after the result', async () => {
    const manager = new ModelManager(workerWithLateProgress(), [ENTRY], (fn) => fn, null);
    const seen: { loaded: number; afterResult: boolean }[] = [];
    let resolved = false;
    const result = await manager.download('m', (p) => seen.push({ loaded: p.loaded, afterResult: resolved }));
    resolved = true;
    expect(result).toEqual({ ok: true });
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([{ loaded: 5, afterResult: false }]);
  });
});
