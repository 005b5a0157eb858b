/**
 * What the bench observes inside the page, installed before the app's own scripts (addInitScript):
 * main-thread long tasks, the JS heap while the model loads, the moment the app says it is ready,
 * and when each "step k of N" appears in the job status (the app's progress events, as the page sees them).
 */

export interface StepMark {
  step: number;
  total: number;
  /** ms since navigation start. */
  t: number;
}

export interface PageProbe {
  longTasks: { start: number; duration: number }[];
  /** ms since navigation start when body[data-ready] became "true"; null until then. */
  readyAt: number | null;
  /** Highest performance.memory.usedJSHeapSize seen until ready; null where the browser has no performance.memory. */
  heapPeakUntilReady: number | null;
  steps: StepMark[];
}

declare global {
  interface Window {
    __benchProbe?: PageProbe;
  }
}

/**
 * The init script's source. tsx compiles with esbuild's keepNames, which wraps named inner functions in
 * calls to a `__name` helper that exists only in Node; the page gets a no-op one so the source runs there.
 */
export function probeScript(): string {
  return `globalThis.__name = globalThis.__name || ((f) => f); (${installProbe.toString()})();`;
}

/** Runs in the page: self-contained, since Playwright sends it as source text. */
function installProbe(): void {
  const probe: PageProbe = { longTasks: [], readyAt: null, heapPeakUntilReady: null, steps: [] };
  window.__benchProbe = probe;
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) probe.longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  } catch {
    // no longtask support: longTasks stays empty and the report says so via its absence
  }
  // performance.memory is Chromium-only and not in lib.dom.
  const memory = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory;
  const sampleHeap = () => {
    if (memory && probe.readyAt === null) probe.heapPeakUntilReady = Math.max(probe.heapPeakUntilReady ?? 0, memory.usedJSHeapSize);
  };
  sampleHeap();
  const timer = setInterval(() => {
    sampleHeap();
    if (probe.readyAt !== null) clearInterval(timer);
  }, 10);
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      const el = m.target as Element;
      if (m.type === 'attributes' && m.attributeName === 'data-ready' && el === document.body && document.body.dataset.ready === 'true' && probe.readyAt === null) {
        sampleHeap();
        probe.readyAt = performance.now();
      } else if (m.type === 'childList' && el.id === 'job-status') {
        const match = /step (\d+) of (\d+)/.exec(el.textContent ?? '');
        if (match) probe.steps.push({ step: Number(match[1]), total: Number(match[2]), t: performance.now() });
      }
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-ready'] });
}
