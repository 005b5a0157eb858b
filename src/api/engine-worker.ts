/** Starts the engine worker and wraps it with comlink (browser only). */
import * as Comlink from 'comlink';
import type { EngineWorkerApi } from '../engine/worker-api.ts';

export function startEngineWorker(): { api: Comlink.Remote<EngineWorkerApi>; worker: Worker } {
  const worker = new Worker(new URL('../engine/worker.ts', import.meta.url), { type: 'module', name: 'sd-engine' });
  return { api: Comlink.wrap<EngineWorkerApi>(worker), worker };
}

export const proxy = <T extends (...args: never[]) => unknown>(fn: T): T => Comlink.proxy(fn) as unknown as T;

export const transfer = <T>(value: T, buffers: ArrayBuffer[]): T => Comlink.transfer(value, buffers);
