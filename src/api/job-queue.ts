/**
 * The local engine's job queue: one job at a time, in arrival order, each tracked by its API id
 * so that `fetch(id)` can say "processing" with an eta and `system_load` can report the queue.
 *
 * Lifecycle: queued → running → done | failed | cancelled.
 * - The promise from `enqueue` settles as the job's run settles: it resolves with the run's value
 *   (status 'done') or rejects with the run's error (status 'failed').
 * - Cancelling a queued job removes it; its promise rejects with `JobCancelledError` and its run is
 *   never called.
 * - Cancelling a running job flags `signal.cancelled` and fires `signal.abort`: the run decides
 *   how to stop (the caller wires the flag to the engine's cancel, the abort to its downloads). A run that then rejects (with
 *   `JobCancelledError` or any other error) counts as 'cancelled'; a run that still resolves
 *   counts as 'done', because its result is real and the caller gets it.
 * - A job that fails or is cancelled never blocks the ones behind it.
 *
 * Timing: `eta` and `queueTime` are in seconds, steps × the measured seconds per step. Until
 * `recordStepTime` has been called the estimate is `defaultSecondsPerStep` (1 s/step, a middle
 * value between WebGPU and WASM speeds for SD 1.5 at 512²); after that an exponential moving
 * average (weight `smoothing` = 0.3 on the newest sample, the first sample replaces the default).
 */

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/**
 * Handed to a job's run; `cancelled` turns true when `cancel(id)` is called while it runs, and
 * `abort` fires at the same moment, so work the run is waiting on (an image download) stops too.
 */
export interface JobSignal {
  readonly cancelled: boolean;
  readonly abort: AbortSignal;
}

export class JobCancelledError extends Error {
  override name = 'JobCancelledError';
  constructor(readonly jobId: number) {
    super(`Job ${jobId} was cancelled.`);
  }
}

export interface JobQueueOptions {
  /** Seconds per step before any measurement (default 1). */
  defaultSecondsPerStep?: number;
  /** Weight of the newest sample in the moving average, in (0, 1] (default 0.3). */
  smoothing?: number;
  /** How many finished jobs keep their final status for `status(id)` (default 1000); oldest are forgotten. */
  finishedLimit?: number;
}

interface Job {
  id: number;
  steps: number;
  stepsDone: number;
  signal: { cancelled: boolean; abort: AbortSignal };
  controller: AbortController;
  start: () => void;
  reject: (e: unknown) => void;
}

export class JobQueue {
  private readonly waiting: Job[] = [];
  private current: Job | null = null;
  /** Final statuses, in finishing order (a Map keeps insertion order, which makes trimming cheap). */
  private readonly finished = new Map<number, JobStatus>();
  private secondsPerStepEstimate: number;
  private measured = false;
  private readonly smoothing: number;
  private readonly finishedLimit: number;

  constructor(options: JobQueueOptions = {}) {
    this.secondsPerStepEstimate = positiveOr(options.defaultSecondsPerStep, 1);
    const smoothing = options.smoothing ?? 0.3;
    this.smoothing = smoothing > 0 && smoothing <= 1 ? smoothing : 0.3;
    this.finishedLimit = Math.max(0, Math.floor(options.finishedLimit ?? 1000));
  }

  /**
   * Adds a job behind the others. On an idle queue the run starts at once (synchronously), so
   * `status(id)` is 'running' right after this call. An id that is already queued or running is
   * refused: the promise rejects and the existing job is untouched.
   */
  enqueue<T>(id: number, estimateSteps: number, run: (signal: JobSignal) => Promise<T>): Promise<T> {
    if (this.isActive(id)) return Promise.reject(new Error(`Job ${id} is already queued or running.`));
    return new Promise<T>((resolve, reject) => {
      const controller = new AbortController();
      const signal = { cancelled: false, abort: controller.signal };
      const job: Job = {
        id,
        steps: Math.max(0, Number.isFinite(estimateSteps) ? estimateSteps : 0),
        stepsDone: 0,
        signal,
        controller,
        reject,
        start: () => {
          let running: Promise<T>;
          try {
            running = run(signal);
          } catch (e) {
            running = Promise.reject(e); // a run that throws before returning its promise is still a failed job
          }
          Promise.resolve(running).then(
            (value) => this.finish(job, 'done', () => resolve(value)),
            (error) => this.finish(job, signal.cancelled ? 'cancelled' : 'failed', () => reject(error)),
          );
        },
      };
      this.finished.delete(id); // a reused id starts a new life
      this.waiting.push(job);
      this.pump();
    });
  }

  /** The job's status; undefined for an id never seen (or forgotten past `finishedLimit`). */
  status(id: number): JobStatus | undefined {
    if (this.current?.id === id) return 'running';
    if (this.waiting.some((j) => j.id === id)) return 'queued';
    return this.finished.get(id);
  }

  /** The running job's id, or null when the queue is idle. */
  get runningId(): number | null {
    return this.current?.id ?? null;
  }

  /** Jobs waiting or running (the API's `queue_num`). */
  get queueNum(): number {
    return this.waiting.length + (this.current ? 1 : 0);
  }

  /** The current seconds-per-step estimate. */
  get secondsPerStep(): number {
    return this.secondsPerStepEstimate;
  }

  /** Feeds one measured step duration (seconds) into the estimate; non-finite or negative values are ignored. */
  recordStepTime(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    this.secondsPerStepEstimate = this.measured
      ? this.smoothing * seconds + (1 - this.smoothing) * this.secondsPerStepEstimate
      : seconds;
    this.measured = true;
  }

  /**
   * Steps the running job has finished, so its remaining time shrinks (clamped to 0..its steps).
   * `totalSteps`, where the runner knows it, replaces the estimate the job was queued with.
   */
  reportProgress(id: number, stepsDone: number, totalSteps?: number): void {
    const job = this.current;
    if (job?.id !== id || !Number.isFinite(stepsDone)) return;
    if (totalSteps !== undefined && Number.isFinite(totalSteps) && totalSteps >= 0) job.steps = totalSteps;
    job.stepsDone = Math.min(job.steps, Math.max(0, stepsDone));
  }

  /**
   * Seconds until the job is expected to be done: what is left of the running job, plus every job
   * ahead of it, plus its own steps. Undefined when the job is neither queued nor running.
   */
  eta(id: number): number | undefined {
    if (this.current?.id === id) return this.remainingSeconds(this.current);
    const index = this.waiting.findIndex((j) => j.id === id);
    if (index < 0) return undefined;
    let seconds = this.current ? this.remainingSeconds(this.current) : 0;
    for (let i = 0; i <= index; i++) seconds += this.remainingSeconds(this.waiting[i]);
    return seconds;
  }

  /** Seconds until the whole queue is expected to drain (the API's `queue_time`). */
  queueTime(): number {
    let seconds = this.current ? this.remainingSeconds(this.current) : 0;
    for (const job of this.waiting) seconds += this.remainingSeconds(job);
    return seconds;
  }

  /**
   * Cancels a job. Queued: removed, its promise rejects with JobCancelledError. Running: its
   * signal is flagged and the run is left to stop. Returns false when the id is neither queued
   * nor running (already finished, already flagged, or unknown).
   */
  cancel(id: number): boolean {
    if (this.current?.id === id) {
      if (this.current.signal.cancelled) return false;
      this.current.signal.cancelled = true;
      this.current.controller.abort();
      return true;
    }
    const index = this.waiting.findIndex((j) => j.id === id);
    if (index < 0) return false;
    const [job] = this.waiting.splice(index, 1);
    this.remember(id, 'cancelled');
    job.reject(new JobCancelledError(id));
    return true;
  }

  private isActive(id: number): boolean {
    return this.current?.id === id || this.waiting.some((j) => j.id === id);
  }

  private remainingSeconds(job: Job): number {
    return Math.max(0, job.steps - job.stepsDone) * this.secondsPerStepEstimate;
  }

  private pump(): void {
    if (this.current) return;
    const next = this.waiting.shift();
    if (!next) return;
    this.current = next;
    next.start();
  }

  private finish(job: Job, status: JobStatus, settle: () => void): void {
    if (this.current === job) this.current = null;
    this.remember(job.id, status);
    settle();
    this.pump();
  }

  private remember(id: number, status: JobStatus): void {
    this.finished.delete(id);
    this.finished.set(id, status);
    while (this.finished.size > this.finishedLimit) {
      const oldest = this.finished.keys().next();
      if (oldest.done) break;
      this.finished.delete(oldest.value);
    }
  }
}

function positiveOr(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}
