/**
 * The engine worker's heap, which performance.memory cannot see (it is not exposed in workers). Chromium's
 * DevTools protocol can: Runtime.getHeapUsage on the worker's own target gives the JS heap and the
 * ArrayBuffer backing stores, where the model's weights live. Playwright's CDP session cannot address a
 * child target, so this attaches in the protocol's older non-flat mode and talks through
 * Target.sendMessageToTarget.
 */
import type { CDPSession, Page } from 'playwright-core';

export interface HeapPeak {
  /** JS heap (usedSize), bytes. */
  usedBytes: number;
  /** ArrayBuffer backing stores (backingStorageSize), bytes. */
  backingBytes: number;
}

export interface WorkerHeapWatch {
  /** Starts a new peak (call before a navigation). */
  reset(): void;
  /** The peak since reset(), or null when no worker answered. */
  peak(): HeapPeak | null;
  close(): Promise<void>;
}

const POLL_MS = 25;

export async function watchWorkerHeap(page: Page): Promise<WorkerHeapWatch> {
  const cdp: CDPSession = await page.context().newCDPSession(page);
  const workers = new Set<string>();
  let peak: HeapPeak | null = null;
  let nextId = 1;
  cdp.on('Target.attachedToTarget', (e) => {
    if (e.targetInfo.type === 'worker') workers.add(e.sessionId);
  });
  cdp.on('Target.detachedFromTarget', (e) => {
    workers.delete(e.sessionId);
  });
  cdp.on('Target.receivedMessageFromTarget', (e) => {
    const msg = JSON.parse(e.message) as { result?: { usedSize?: number; backingStorageSize?: number } };
    const r = msg.result;
    if (r?.usedSize === undefined) return;
    peak = { usedBytes: Math.max(peak?.usedBytes ?? 0, r.usedSize), backingBytes: Math.max(peak?.backingBytes ?? 0, r.backingStorageSize ?? 0) };
  });
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  const timer = setInterval(() => {
    for (const sessionId of workers) {
      const message = JSON.stringify({ id: nextId++, method: 'Runtime.getHeapUsage' });
      // a worker that went away with a reload answers with an error: the next attach replaces it
      cdp.send('Target.sendMessageToTarget', { sessionId, message }).catch(() => workers.delete(sessionId));
    }
  }, POLL_MS);
  return {
    reset: () => {
      peak = null;
    },
    peak: () => peak,
    close: async () => {
      clearInterval(timer);
      await cdp.detach().catch(() => undefined);
    },
  };
}
