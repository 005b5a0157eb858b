/**
 * Figures of one job's denoising loops, for meta.timings.loop and the bench: which loop ran and
 * why, how much of its time was spent inside session.run, and what crossed between host and GPU.
 */
import type { LoopChoice } from './device-loop.ts';
import type { RunMeter } from './runtime.ts';

export type LoopKind = LoopChoice['mode'] | 'naive';

export interface LoopStats {
  mode: LoopKind;
  reason: string;
  steps: number;
  /** Sum of the steps' own time (previews excluded). */
  loopSeconds: number;
  /** The part of loopSeconds awaited inside session.run (UNet and helper graphs). */
  sessionRunSeconds: number;
  uploadBytes: number;
  readbackBytes: number;
  /** Steps whose latents came back for a live preview. */
  previewSteps: number;
  /** Bytes read back on the other steps, the last step (the result) excluded. */
  readbackBytesOutsidePreviews: number;
  /** How many steps that is. */
  stepsOutsidePreviews: number;
}

export function emptyLoopStats(): LoopStats {
  return {
    mode: 'host', reason: '', steps: 0, loopSeconds: 0, sessionRunSeconds: 0, uploadBytes: 0, readbackBytes: 0,
    previewSteps: 0, readbackBytesOutsidePreviews: 0, stepsOutsidePreviews: 0,
  };
}

/** Collects per step from the meter that the job's sessions share. */
export class LoopRecorder {
  private before: ReturnType<RunMeter['snapshot']>;

  constructor(
    private readonly meter: RunMeter,
    readonly stats: LoopStats,
  ) {
    this.before = meter.snapshot();
  }

  /** Call when a step starts (before its first session.run). */
  stepStarted(): void {
    this.before = this.meter.snapshot();
  }

  /** Call after the step, with its time and whether its latents were read back for a preview. */
  stepEnded(seconds: number, previewed: boolean, last: boolean): void {
    const now = this.meter.snapshot();
    const s = this.stats;
    s.steps++;
    s.loopSeconds += seconds;
    s.sessionRunSeconds += now.runSeconds - this.before.runSeconds;
    s.uploadBytes += now.uploadBytes - this.before.uploadBytes;
    const readback = now.readbackBytes - this.before.readbackBytes;
    s.readbackBytes += readback;
    if (previewed) s.previewSteps++;
    else if (!last) {
      s.stepsOutsidePreviews++;
      s.readbackBytesOutsidePreviews += readback;
    }
    this.before = now;
  }
}
