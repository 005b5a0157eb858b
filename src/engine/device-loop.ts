/**
 * The GPU-resident denoising loop. On WebGPU the latents, the UNet's noise prediction, the guidance
 * combine and the scheduler step stay in GPU buffers from the first step to the last: the host
 * sends only per-step scalars (timestep, step weights) and, for ancestral schedulers, the step's
 * noise (drawn on the host so that seeds give the same images as the host loop). Latents come back
 * only on the steps a live preview asks for and after the last step.
 *
 * It applies where the step is linear (Scheduler.linearStep) and nothing else touches the latents
 * between steps; `chooseLoop` says which loop a job gets and why.
 */
import type { HostTensor } from './runtime.ts';
import type { Conditioning } from './pipelines/denoising-loop.ts';
import type { Scheduler, SchedulerRng } from './schedulers/types.ts';

/** A tensor the pipeline cannot read: it stays on the GPU until a step reads it back. */
export interface DeviceTensor {
  readonly dims: readonly number[];
  dispose(): void;
}

export interface DeviceStepInput {
  /** The UNet's output, [B, C, h, w]. */
  pred: DeviceTensor;
  /** [B, 1, 1, 1] weights of the batch items: [1 - g, g] under guidance, [1] without. */
  guidance: HostTensor;
  sample: HostTensor | DeviceTensor;
  /** The step's noise, or [1, 1, 1, 1] zeros when it draws none. */
  noise: HostTensor;
  /** The step's (sample, prediction, noise) weights and the next UNet input's scale. */
  coefficients: Float32Array;
  /** Whether the new latents come back to the host (preview and last steps) or stay on the GPU. */
  read: boolean;
}

/** The conditioning as the UNet reads it on the device: the large tensors in GPU buffers, small ones from the host. */
export type DeviceConditioning = Record<string, HostTensor | DeviceTensor>;

/** What the device loop needs from the models: `engine.ts` implements it over ORT sessions and the helper graphs. */
export interface DeviceModels {
  /** The conditioning into GPU buffers, once per image: the text embeddings; SDXL's few pooled and time-id values stay host tensors. */
  upload(conditioning: Conditioning): Promise<DeviceConditioning>;
  predictNoise(sample: HostTensor | DeviceTensor, timestep: number, conditioning: DeviceConditioning): Promise<DeviceTensor>;
  step(input: DeviceStepInput): Promise<{ latents: DeviceTensor | Float32Array; next: DeviceTensor }>;
}

export type LoopMode = 'device' | 'host';

export interface LoopChoice {
  mode: LoopMode;
  /** Why the loop runs where it does, for meta and the bench. */
  reason: string;
}

/** The device loop where the models have one, the scheduler steps linearly and no mode edits the latents between steps. */
export function chooseLoop(device: DeviceModels | null, hostReason: string, scheduler: Scheduler, editsLatents: boolean): LoopChoice {
  if (!device) return { mode: 'host', reason: hostReason };
  if (editsLatents) return { mode: 'host', reason: 'inpainting adds mask channels or blends known latents between steps, on the host' };
  if (!scheduler.linearStep || !scheduler.linearStepUnsupported) {
    return { mode: 'host', reason: `${scheduler.name} keeps earlier model outputs or evaluates twice per step; its step runs on the host` };
  }
  const unsupported = scheduler.linearStepUnsupported();
  if (unsupported) return { mode: 'host', reason: unsupported };
  return { mode: 'device', reason: 'latents, noise prediction, guidance and scheduler step stay on the GPU; read back for previews and the result' };
}

export interface DeviceLoopHooks {
  /** Called once the loop's set-up is on the device, right before the first step. */
  onStart?(): void;
  shouldStop?(): boolean;
  /** Whether the latents after step `step` (1-based) should come back for a preview. */
  wantsLatents?(step: number, totalSteps: number): boolean;
  onStep?(step: number, t: number, latents: Float32Array | null, seconds: number): void | Promise<void>;
  cancelled(): Error;
}

/** One scalar: the factor scaleModelInput applies at `t` (every scheduler scales elementwise by one factor). */
function inputScale(scheduler: Scheduler, t: number): number {
  return scheduler.scaleModelInput(Float32Array.of(1), t)[0];
}

function repeatBatch(x: Float32Array, batch: number): Float32Array {
  const out = new Float32Array(x.length * batch);
  for (let b = 0; b < batch; b++) out.set(x, b * x.length);
  return out;
}

/** The loop on the device; returns the final latents (read back after the last step). */
export async function denoiseOnDevice(
  device: DeviceModels,
  scheduler: Scheduler,
  timesteps: number[],
  start: HostTensor,
  text: Conditioning,
  guidanceScale: number,
  guided: boolean,
  rng: SchedulerRng,
  hooks: DeviceLoopHooks,
): Promise<Float32Array> {
  const batch = guided ? 2 : 1;
  const dims = [...start.dims];
  const guidance: HostTensor = { data: guided ? Float32Array.of(1 - guidanceScale, guidanceScale) : Float32Array.of(1), dims: [batch, 1, 1, 1] };
  const noNoise: HostTensor = { data: new Float32Array(1), dims: [1, 1, 1, 1] };
  const live: DeviceTensor[] = [];
  const track = <T extends DeviceTensor>(t: T): T => (live.push(t), t);
  const release = (t: DeviceTensor | HostTensor | null) => {
    if (!t || !('dispose' in t)) return;
    const i = live.indexOf(t);
    if (i >= 0) live.splice(i, 1);
    t.dispose();
  };
  try {
    const textOnDevice = await device.upload(text);
    for (const t of Object.values(textOnDevice)) if ('dispose' in t) track(t);
    const first = start.data as Float32Array;
    const s0 = inputScale(scheduler, timesteps[0]);
    let unetInput: HostTensor | DeviceTensor = { data: repeatBatch(first.map((v) => v * s0), batch), dims: [batch, ...dims.slice(1)] };
    let sample: HostTensor | DeviceTensor = start;
    let latents: Float32Array | null = null;
    hooks.onStart?.();
    for (let i = 0; i < timesteps.length; i++) {
      if (hooks.shouldStop?.()) throw hooks.cancelled();
      const started = performance.now();
      const t = timesteps[i];
      const pred = track(await device.predictNoise(unetInput, t, textOnDevice));
      release(unetInput as DeviceTensor);
      const w = scheduler.linearStep!(t, first.length, rng);
      const last = i === timesteps.length - 1;
      const nextScale = last ? 1 : inputScale(scheduler, timesteps[i + 1]);
      const read = last || (hooks.wantsLatents?.(i + 1, timesteps.length) ?? false);
      const out = await device.step({
        pred,
        guidance,
        sample,
        noise: w.noiseData ? { data: w.noiseData, dims } : noNoise,
        coefficients: Float32Array.of(w.sample, w.output, w.noise, nextScale),
        read,
      });
      release(pred);
      release(sample as DeviceTensor);
      unetInput = track(out.next);
      if (out.latents instanceof Float32Array) {
        latents = out.latents;
        sample = { data: latents, dims };
      } else {
        latents = null;
        sample = track(out.latents);
      }
      await hooks.onStep?.(i + 1, t, latents, (performance.now() - started) / 1000);
    }
    if (!latents) throw new Error('the device loop ended without reading back its latents');
    return latents;
  } finally {
    for (const t of live.splice(0)) t.dispose();
  }
}
