/**
 * The running job and its results: step k of N, and the images when it is done. (Baseline: the
 * live preview, elapsed time and ETA grow here.)
 */
import type { JobViewHandle, JobViewOptions } from './contracts.ts';

export function mountJobView(root: HTMLElement, _options: JobViewOptions): JobViewHandle {
  const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  const setStatus = (text: string, isError = false) => {
    const el = $('job-status');
    el.textContent = text;
    el.classList.toggle('error', isError);
  };
  return {
    start() {
      setStatus('Starting…');
    },
    progress(p) {
      if (p.phase === 'denoise') {
        const bar = $<HTMLProgressElement>('job-progress');
        bar.hidden = false;
        bar.value = ((p.sample - 1) * p.totalSteps + p.step) / (p.samples * p.totalSteps);
        setStatus(`Image ${p.sample} of ${p.samples}: step ${p.step} of ${p.totalSteps}`);
      } else if (p.phase === 'decode') {
        setStatus(`Image ${p.sample} of ${p.samples}: decoding`);
      }
    },
    finish(response) {
      $<HTMLProgressElement>('job-progress').hidden = true;
      if (response.status === 'processing') {
        setStatus(`Queued as request ${response.id}`);
        return;
      }
      if (response.status !== 'success') {
        const m = response.message;
        setStatus(typeof m === 'string' ? m : Object.values(m).flat().join(' '), true);
        return;
      }
      const results = root.querySelector('#results')!;
      for (const url of response.output) {
        const fig = document.createElement('figure');
        const img = document.createElement('img');
        img.src = url;
        img.alt = `Generated: ${String(response.meta.prompt)}`;
        const cap = document.createElement('figcaption');
        cap.textContent = `seed ${String(response.meta.seed)} · ${response.meta.W}×${response.meta.H} · ${response.generationTime}s`;
        fig.append(img, cap);
        results.prepend(fig);
      }
      setStatus(`Done in ${response.generationTime}s on ${String(response.meta.backend ?? response.meta.runtime)}`);
    },
  };
}
