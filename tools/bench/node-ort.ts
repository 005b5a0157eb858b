/**
 * onnxruntime-node as the engine's OrtModule, with a count of session.run calls, so that the Node
 * bench can tell how many UNet calls a run made (the naive loop's two per guided step show up
 * here; the engine's own LoopStats count time and bytes, not calls).
 */
import type * as OrtWeb from 'onnxruntime-web';
import type { OrtModule } from '../../src/engine/runtime.ts';

export interface RunCounts {
  /** Calls of any session. */
  all: number;
  /** Calls of sessions with the UNet's inputs (sample, timestep, encoder_hidden_states). */
  unet: number;
}

function isUnet(session: OrtWeb.InferenceSession): boolean {
  const names = session.inputNames;
  return names.includes('sample') && names.includes('timestep') && names.includes('encoder_hidden_states');
}

function counted(session: OrtWeb.InferenceSession, counts: RunCounts): OrtWeb.InferenceSession {
  const unet = isUnet(session);
  // run() is overloaded; every form passes through unchanged, so the wrapper is typed as the original
  const run = ((...args: unknown[]) => {
    counts.all++;
    if (unet) counts.unet++;
    return (session.run as (...a: unknown[]) => Promise<unknown>).apply(session, args);
  }) as OrtWeb.InferenceSession['run'];
  return new Proxy(session, {
    get(target, prop) {
      if (prop === 'run') return run;
      // getters such as inputNames read private fields: they need the real session as `this`
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * The module with InferenceSession.create returning sessions that count their runs into `counts`.
 * Everything else (Tensor, env) is the module's own.
 */
export function countingOrt(ort: OrtModule, counts: RunCounts): OrtModule {
  const factory = ort.InferenceSession;
  // overloaded too, passed through the same way
  const create = (async (...args: unknown[]) => {
    const session = await (factory.create as (...a: unknown[]) => Promise<OrtWeb.InferenceSession>)(...args);
    return counted(session, counts);
  }) as typeof factory.create;
  const InferenceSession = new Proxy(factory, {
    get: (target, prop) => (prop === 'create' ? create : Reflect.get(target, prop, target)),
  });
  return { ...ort, InferenceSession };
}
