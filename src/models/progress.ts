/**
 * Progress for a model download: per-file bytes, the whole model's bytes, the network speed over
 * a sliding window and the time left. Events are throttled (a 2 GB file arrives in ~30k reads)
 * except where the caller forces one: file start, each stored chunk, file end.
 */
import type { DownloadProgress } from './model-source.ts';

export type ProgressListener = (p: DownloadProgress) => void;

/** Long enough to smooth bursty reads, short enough to follow a changing connection. */
const SPEED_WINDOW_MS = 5000;

export class ProgressReporter {
  private readonly loadedByFile = new Map<string, number>();
  private readonly samples: { t: number; bytes: number }[] = [];
  private networkBytes = 0;
  private lastEmit = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly modelId: string,
    private readonly listener: ProgressListener | undefined,
    /** Bytes of the whole model; null while a size is unknown. */
    private modelTotal: number | null,
    private readonly intervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Bytes a file already has (stored before this download started, or complete). */
  setFileLoaded(path: string, loaded: number): void {
    this.loadedByFile.set(path, loaded);
  }

  setModelTotal(total: number | null): void {
    this.modelTotal = total;
  }

  /** Counts bytes that arrived from the network, for the speed. */
  received(bytes: number): void {
    this.networkBytes += bytes;
    const t = this.now();
    this.samples.push({ t, bytes: this.networkBytes });
    while (this.samples.length > 2 && this.samples[0].t < t - SPEED_WINDOW_MS) this.samples.shift();
  }

  bytesPerSecond(): number {
    if (this.samples.length < 2) return 0;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const seconds = (last.t - first.t) / 1000;
    return seconds > 0 ? (last.bytes - first.bytes) / seconds : 0;
  }

  modelLoaded(): number {
    let sum = 0;
    for (const v of this.loadedByFile.values()) sum += v;
    return sum;
  }

  /** Reports a file's state; throttled unless `force`. */
  report(path: string, loaded: number, total: number | null, extra: { fromCache?: boolean; force?: boolean; verifying?: boolean } = {}): void {
    this.loadedByFile.set(path, loaded);
    if (!this.listener) return;
    const t = this.now();
    if (!extra.force && t - this.lastEmit < this.intervalMs) return;
    this.lastEmit = t;
    const speed = this.bytesPerSecond();
    const modelLoaded = this.modelLoaded();
    const left = this.modelTotal === null ? null : Math.max(0, this.modelTotal - modelLoaded);
    const event: DownloadProgress = {
      modelId: this.modelId,
      file: path,
      loaded,
      total,
      fromCache: extra.fromCache ?? false,
      bytesPerSecond: speed,
      etaSeconds: left === null ? null : left === 0 ? 0 : speed > 0 ? left / speed : null,
      modelLoaded,
      modelTotal: this.modelTotal,
    };
    if (extra.verifying) event.verifying = true;
    this.listener(event);
  }
}
