/**
 * The running job and its results: step k of N (tile k of N for an upscale), elapsed time and ETA,
 * a live preview of the latents (TAESD or the linear approximation, drawn as the engine sends them),
 * a Cancel button, and the images when it is done.
 */
import './styles/job-view.css';
import type { JobViewHandle, JobViewOptions, Mode } from './contracts.ts';
import type { LivePreviewImage } from '../engine/jobs.ts';

/** "4.2 s", "1 min 05 s": short enough to tick every few hundred milliseconds. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/**
 * Seconds left from the pace of the steps so far. The first step's time also holds text encoding
 * (and the image encoding of img2img), so once two steps are done the pace is measured from the first.
 */
export function estimateRemaining(p: { done: number; total: number; now: number; started: number; firstStepAt: number | null; firstDone: number }): number | null {
  const { done, total, now } = p;
  if (done <= 0) return null;
  const perStep = p.firstStepAt !== null && done > p.firstDone ? (now - p.firstStepAt) / (done - p.firstDone) : (now - p.started) / done;
  return Math.max(0, perStep * (total - done));
}

const IDLE_CAPTION = 'The live preview shows here while a job runs';

function element<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}): HTMLElementTagNameMap[K] {
  return Object.assign(document.createElement(tag), props);
}

export function mountJobView(root: HTMLElement, options: JobViewOptions): JobViewHandle {
  const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  const status = $('job-status');
  const bar = $<HTMLProgressElement>('job-progress');

  // The live area and the bar always take their room, so a job moves nothing on the page.
  const live = element('div', { className: 'job-live' });
  const figure = element('figure', { className: 'job-live-preview' });
  const canvas = element('canvas', { id: 'live-preview', width: 1, height: 1 });
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', 'Live preview of the image being generated');
  const caption = element('figcaption', { id: 'live-preview-caption', textContent: IDLE_CAPTION });
  canvas.hidden = true;
  figure.append(canvas, caption);
  const side = element('div', { className: 'job-live-side' });
  const timing = element('p', { id: 'job-timing', className: 'job-timing' });
  timing.setAttribute('aria-live', 'off'); // it ticks: the status line announces the steps
  const cancel = element('button', { id: 'job-cancel', type: 'button', textContent: 'Cancel', disabled: true });
  side.append(timing, cancel);
  live.append(figure, side);
  status.after(live);
  bar.hidden = false;
  bar.classList.add('idle');

  let started = 0;
  let firstStepAt: number | null = null;
  let firstDone = 0;
  let done = 0;
  let total = 0;
  let lastStep = '';
  /** What `done` and `total` count, for the cancelled message: steps, or an upscale's tiles. */
  let unit: 'step' | 'tile' = 'step';
  let timer: ReturnType<typeof setInterval> | null = null;
  let cancelling = false;

  const setStatus = (text: string, isError = false) => {
    status.textContent = text;
    status.classList.toggle('error', isError);
  };

  const tick = () => {
    const now = performance.now() / 1000;
    const eta = estimateRemaining({ done, total, now, started, firstStepAt, firstDone });
    timing.textContent = `Elapsed ${formatDuration(now - started)} · ETA ${eta === null ? '–' : formatDuration(eta)}`;
  };

  const stop = () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
    cancel.disabled = true;
    // nothing is left to estimate once the job has ended
    timing.textContent = `Elapsed ${formatDuration(performance.now() / 1000 - started)}`;
  };

  cancel.addEventListener('click', () => {
    cancelling = true;
    cancel.disabled = true;
    setStatus('Cancelling…');
    options.onCancel();
  });

  const drawPreview = (preview: LivePreviewImage, aspect: number) => {
    if (canvas.width !== preview.width || canvas.height !== preview.height) {
      canvas.width = preview.width;
      canvas.height = preview.height;
    }
    // ImageData wants an ArrayBuffer-backed array; the transferred one is
    canvas.getContext('2d')!.putImageData(new ImageData(preview.rgba as Uint8ClampedArray<ArrayBuffer>, preview.width, preview.height), 0, 0);
    canvas.style.aspectRatio = String(aspect);
    canvas.hidden = false;
    caption.textContent = preview.decoder === 'taesd' ? 'Live preview (TAESD)' : 'Live preview (approximate colours)';
    canvas.dataset.decoder = preview.decoder;
    canvas.dataset.ms = (preview.seconds * 1000).toFixed(3);
    canvas.dataset.step = lastStep;
  };

  let aspect = 1;

  return {
    start(endpoint: Mode, request: Record<string, unknown>) {
      const w = Number(request.width);
      const h = Number(request.height);
      aspect = w > 0 && h > 0 ? w / h : 1;
      started = performance.now() / 1000;
      firstStepAt = null;
      firstDone = 0;
      done = 0;
      total = 0;
      lastStep = '';
      unit = endpoint === 'upscale' ? 'tile' : 'step';
      cancelling = false;
      delete status.dataset.state;
      canvas.hidden = true;
      // An upscale has no latents to preview: the box says so rather than staying blank.
      caption.textContent = endpoint === 'upscale' ? 'An upscale has no live preview' : '';
      delete canvas.dataset.step;
            cancel.disabled = false;
      setStatus('Starting…');
      if (timer !== null) clearInterval(timer);
      timer = setInterval(tick, 250);
      tick();
    },
    progress(p) {
      if (p.phase === 'denoise') {
        total = p.samples * p.totalSteps;
        done = (p.sample - 1) * p.totalSteps + p.step;
        if (firstStepAt === null) {
          firstStepAt = performance.now() / 1000;
          firstDone = done;
        }
        bar.classList.remove('idle');
        bar.value = done / total;
        lastStep = `${p.sample}:${p.step}`;
        const image = p.samples > 1 ? `Image ${p.sample} of ${p.samples}: ` : '';
        if (!cancelling) setStatus(`${image}step ${p.step} of ${p.totalSteps}`);
        if (p.preview) drawPreview(p.preview, aspect);
        tick();
      } else if (p.phase === 'decode') {
        if (!cancelling) setStatus(`${p.samples > 1 ? `Image ${p.sample} of ${p.samples}: ` : ''}decoding`);
      } else if (p.phase === 'upscale') {
        // A generation's `upscale` field also upscales after its steps: its tiles get the bar to themselves.
        if (unit !== 'tile') {
          unit = 'tile';
          firstStepAt = null; // the steps' pace says nothing about the tiles'
        }
        total = p.tiles;
        done = p.tile;
        if (firstStepAt === null) {
          firstStepAt = performance.now() / 1000;
          firstDone = done;
        }
        bar.classList.remove('idle');
        bar.value = p.tiles > 0 ? p.tile / p.tiles : 0;
        if (!cancelling) setStatus(`Upscaling: tile ${p.tile} of ${p.tiles}`);
        tick();
      }
    },
    finish(response) {
      stop();
      const success = response.status === 'success';
      // a cancelled run keeps its last preview: it shows how far the run got
      if (success || response.status === 'processing') {
        canvas.hidden = true;
        caption.textContent = IDLE_CAPTION;
      }
      bar.classList.add('idle');
      if (response.status === 'processing') {
                setStatus(`Queued as request ${response.id}`);
        return;
      }
      if (response.status !== 'success') {
        const m = response.message;
        const text = typeof m === 'string' ? m : Object.values(m).flat().join(' ');
        if (cancelling || /cancel/i.test(text)) {
          // the last preview stays: it shows how far the run got
          setStatus(`Cancelled ${done > 0 ? `after ${unit} ${done} of ${total}` : `before the first ${unit}`} (the request was cancelled)`);
          status.dataset.state = 'cancelled';
          return;
        }
                setStatus(text, true);
        return;
      }
            const results = root.querySelector('#results')!;
      const meta = response.meta;
      // An upscale (super_resolution) has a scale where a generation has a prompt and a seed.
      const upscaled = meta.scale !== undefined && meta.seed === undefined;
      for (const url of response.output) {
        const fig = document.createElement('figure');
        const img = document.createElement('img');
        img.src = url;
        img.alt = upscaled ? `Upscaled ${String(meta.scale)}×` : `Generated: ${String(meta.prompt)}`;
        const cap = document.createElement('figcaption');
        const what = upscaled ? `upscaled ${String(meta.scale)}×` : `seed ${String(meta.seed)}`;
        cap.textContent = `${what} · ${String(meta.W)}×${String(meta.H)} · ${response.generationTime}s`;
        fig.append(img, cap);
        results.prepend(fig);
      }
      // An upscale reports no backend (its runtime says local), and "on local" reads as a typo.
      const where = meta.backend ?? (meta.runtime === 'local' ? 'this device' : meta.runtime);
      setStatus(`Done in ${response.generationTime}s on ${String(where)}${loopNote(meta.timings)}`);
    },
  };
}

/** Says so when the denoising loop kept its latents on the GPU (meta.timings.loop, local runs only). */
function loopNote(timings: unknown): string {
  const loop = (timings as { loop?: { mode?: unknown } } | undefined)?.loop;
  return loop?.mode === 'device' ? ' · denoised on the GPU (latents read back only for previews)' : '';
}
