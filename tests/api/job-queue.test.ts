/**
 * The job queue: one job at a time in arrival order, a failed or cancelled job never blocks the
 * rest, and eta / queue_time come from measured seconds per step.
 */
import { describe, expect, it } from 'vitest';
import { JobCancelledError, JobQueue, type JobSignal } from '../../src/api/job-queue.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets queued promise callbacks run. */
const flush = () => sleep(0);

describe('JobQueue ordering', () => {
  it('runs jobs one at a time in arrival order, whatever their durations', async () => {
    const queue = new JobQueue();
    const events: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const durations = [30, 5, 20, 0, 12, 1];
    const results = durations.map((ms, i) =>
      queue.enqueue(i + 1, 10, async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        events.push(`start ${i + 1}`);
        await sleep(ms);
        events.push(`end ${i + 1}`);
        running--;
        return `result ${i + 1}`;
      }),
    );
    expect(queue.queueNum).toBe(6);
    expect(await Promise.all(results)).toEqual(durations.map((_, i) => `result ${i + 1}`));
    expect(maxRunning).toBe(1);
    expect(events).toEqual(durations.flatMap((_, i) => [`start ${i + 1}`, `end ${i + 1}`]));
    expect(queue.queueNum).toBe(0);
  });

  it('goes through queued → running → done, and a failure does not block the next job', async () => {
    const queue = new JobQueue();
    const first = deferred<string>();
    const second = deferred<string>();
    const third = deferred<string>();
    const p1 = queue.enqueue(1, 5, () => first.promise);
    const p2 = queue.enqueue(2, 5, () => second.promise);
    const p3 = queue.enqueue(3, 5, () => third.promise);
    expect([queue.status(1), queue.status(2), queue.status(3)]).toEqual(['running', 'queued', 'queued']);
    expect(queue.status(99)).toBeUndefined();

    first.reject(new Error('engine crashed'));
    await expect(p1).rejects.toThrow('engine crashed');
    expect([queue.status(1), queue.status(2), queue.status(3)]).toEqual(['failed', 'running', 'queued']);

    second.resolve('two');
    await expect(p2).resolves.toBe('two');
    expect([queue.status(2), queue.status(3)]).toEqual(['done', 'running']);

    third.resolve('three');
    await expect(p3).resolves.toBe('three');
    expect(queue.status(3)).toBe('done');
    expect(queue.queueNum).toBe(0);
  });

  it('treats a run that throws synchronously as a failed job and moves on', async () => {
    const queue = new JobQueue();
    const p1 = queue.enqueue(1, 1, () => {
      throw new Error('bad job');
    });
    const p2 = queue.enqueue(2, 1, async () => 'fine');
    await expect(p1).rejects.toThrow('bad job');
    await expect(p2).resolves.toBe('fine');
    expect(queue.status(1)).toBe('failed');
  });

  it('refuses an id that is already queued or running, without disturbing it', async () => {
    const queue = new JobQueue();
    const gate = deferred<number>();
    const p1 = queue.enqueue(7, 1, () => gate.promise);
    await expect(queue.enqueue(7, 1, async () => 0)).rejects.toThrow('already queued or running');
    expect(queue.queueNum).toBe(1);
    gate.resolve(7);
    await expect(p1).resolves.toBe(7);
  });
});

describe('JobQueue cancel', () => {
  it('removes a queued job: its promise rejects with JobCancelledError and its run never starts', async () => {
    const queue = new JobQueue();
    const gate = deferred<string>();
    const started: number[] = [];
    const p1 = queue.enqueue(1, 5, () => (started.push(1), gate.promise));
    const p2 = queue.enqueue(2, 5, async () => (started.push(2), 'two'));
    const p3 = queue.enqueue(3, 5, async () => (started.push(3), 'three'));

    expect(queue.cancel(2)).toBe(true);
    const error = await p2.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobCancelledError);
    expect((error as JobCancelledError).jobId).toBe(2);
    expect(queue.status(2)).toBe('cancelled');
    expect(queue.queueNum).toBe(2);
    expect(queue.cancel(2)).toBe(false);

    gate.resolve('one');
    expect(await p1).toBe('one');
    expect(await p3).toBe('three');
    expect(started).toEqual([1, 3]);
  });

  it('flags a running job; the run stops by rejecting, the job counts as cancelled and the next one runs', async () => {
    const queue = new JobQueue();
    let seen: JobSignal | undefined;
    const p1 = queue.enqueue(1, 100, async (signal) => {
      seen = signal;
      for (let step = 0; step < 1000; step++) {
        if (signal.cancelled) throw new JobCancelledError(1);
        await sleep(1);
      }
      return 'finished';
    });
    const p2 = queue.enqueue(2, 1, async () => 'next');
    await sleep(5);
    expect(seen?.cancelled).toBe(false);
    expect(queue.cancel(1)).toBe(true);
    expect(seen?.cancelled).toBe(true);
    expect(queue.cancel(1)).toBe(false); // already flagged
    await expect(p1).rejects.toBeInstanceOf(JobCancelledError);
    expect(queue.status(1)).toBe('cancelled');
    await expect(p2).resolves.toBe('next');
  });

  it('counts any rejection after the flag as cancelled, and a run that still finishes as done', async () => {
    const queue = new JobQueue();
    const a = deferred<string>();
    const pa = queue.enqueue(1, 1, () => a.promise);
    queue.cancel(1);
    a.reject(new Error('engine: aborted'));
    await expect(pa).rejects.toThrow('engine: aborted');
    expect(queue.status(1)).toBe('cancelled');

    const b = deferred<string>();
    const pb = queue.enqueue(2, 1, () => b.promise);
    queue.cancel(2);
    b.resolve('too late to stop');
    await expect(pb).resolves.toBe('too late to stop');
    expect(queue.status(2)).toBe('done');
  });

  it('returns false for finished and unknown ids', async () => {
    const queue = new JobQueue();
    await queue.enqueue(1, 1, async () => 1);
    expect(queue.cancel(1)).toBe(false);
    expect(queue.cancel(42)).toBe(false);
    expect(queue.status(1)).toBe('done');
  });

  it('never loses a job under a mix of failures and cancels', async () => {
    const queue = new JobQueue();
    const outcomes = Array.from({ length: 20 }, (_, i) =>
      queue
        .enqueue(i, 3, async () => {
          await sleep(i % 3);
          if (i % 4 === 0) throw new Error(`fail ${i}`);
          return i;
        })
        .then(
          (v) => `done ${v}`,
          (e: unknown) => (e instanceof JobCancelledError ? `cancelled ${e.jobId}` : `failed ${i}`),
        ),
    );
    for (const id of [5, 9, 13]) expect(queue.cancel(id)).toBe(true);
    const settled = await Promise.all(outcomes);
    expect(settled).toEqual(
      Array.from({ length: 20 }, (_, i) => ([5, 9, 13].includes(i) ? `cancelled ${i}` : i % 4 === 0 ? `failed ${i}` : `done ${i}`)),
    );
    expect(queue.queueNum).toBe(0);
  });

  it('forgets the oldest final statuses past finishedLimit', async () => {
    const queue = new JobQueue({ finishedLimit: 2 });
    for (const id of [1, 2, 3]) await queue.enqueue(id, 1, async () => id);
    expect([queue.status(1), queue.status(2), queue.status(3)]).toEqual([undefined, 'done', 'done']);
  });
});

describe('JobQueue eta and queueTime', () => {
  it('uses 1 s/step before any measurement', async () => {
    const queue = new JobQueue();
    const gate = deferred<void>();
    void queue.enqueue(1, 30, () => gate.promise);
    void queue.enqueue(2, 20, () => gate.promise);
    expect(queue.secondsPerStep).toBe(1);
    expect(queue.eta(1)).toBe(30);
    expect(queue.eta(2)).toBe(50);
    expect(queue.queueTime()).toBe(50);
    gate.resolve();
  });

  it('follows recorded step times (the first replaces the default, then an exponential moving average)', () => {
    const queue = new JobQueue({ smoothing: 0.5 });
    queue.recordStepTime(0.2);
    expect(queue.secondsPerStep).toBeCloseTo(0.2, 12);
    queue.recordStepTime(0.4);
    expect(queue.secondsPerStep).toBeCloseTo(0.3, 12);
    queue.recordStepTime(Number.NaN);
    queue.recordStepTime(-1);
    expect(queue.secondsPerStep).toBeCloseTo(0.3, 12);
  });

  it('sums the running job remaining steps and the jobs ahead, and shrinks with progress', async () => {
    const queue = new JobQueue({ defaultSecondsPerStep: 2 });
    const gates = [deferred<void>(), deferred<void>(), deferred<void>()];
    const jobs = [
      queue.enqueue(10, 30, () => gates[0].promise),
      queue.enqueue(11, 20, () => gates[1].promise),
      queue.enqueue(12, 10, () => gates[2].promise),
    ];
    expect([queue.eta(10), queue.eta(11), queue.eta(12)]).toEqual([60, 100, 120]);
    expect(queue.queueTime()).toBe(120);

    queue.recordStepTime(0.5); // measured speed replaces the default
    expect([queue.eta(10), queue.eta(11), queue.eta(12)]).toEqual([15, 25, 30]);

    queue.reportProgress(10, 20);
    expect([queue.eta(10), queue.eta(11), queue.eta(12)]).toEqual([5, 15, 20]);
    queue.reportProgress(11, 5); // not running yet: ignored
    queue.reportProgress(10, 99); // clamped to the job's steps
    expect(queue.eta(10)).toBe(0);
    expect(queue.queueTime()).toBe(15);
    // the runner knows better than the estimate: 40 calls, 30 of them done
    queue.reportProgress(10, 30, 40);
    expect(queue.eta(10)).toBe(5);
    queue.reportProgress(10, 30, 30);
    expect(queue.queueTime()).toBe(15);

    gates[0].resolve();
    await jobs[0];
    expect(queue.eta(10)).toBeUndefined();
    expect([queue.eta(11), queue.eta(12)]).toEqual([10, 15]);

    queue.cancel(12);
    await expect(jobs[2]).rejects.toBeInstanceOf(JobCancelledError);
    expect(queue.queueTime()).toBe(10);
    gates[1].resolve();
    await jobs[1];
    expect(queue.queueTime()).toBe(0);
    await flush();
  });
});
