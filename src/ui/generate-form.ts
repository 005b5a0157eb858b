/**
 * The generate form: prompt, images and every API field, read into the hosted API's own request
 * JSON. (Baseline: img2img fields; the modes, mask editor and advanced panel grow here.)
 */
import type { FormHandle, FormOptions, Mode } from './contracts.ts';

export function mountGenerateForm(form: HTMLFormElement, options: FormOptions): FormHandle {
  const $ = <T extends HTMLElement>(id: string) => form.querySelector<T>(`#${id}`)!;
  let initImageUrl: string | null = null;

  $<HTMLInputElement>('init_file').addEventListener('change', (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (initImageUrl) URL.revokeObjectURL(initImageUrl);
    initImageUrl = file ? URL.createObjectURL(file) : null;
    const preview = $<HTMLImageElement>('init-preview');
    preview.hidden = !initImageUrl;
    if (initImageUrl) preview.src = initImageUrl;
  });

  const value = (id: string) => $<HTMLInputElement>(id).value.trim() || null;
  const read = (): { endpoint: Mode; request: Record<string, unknown> } => ({
    endpoint: 'img2img',
    request: {
      key: '',
      prompt: value('prompt'),
      negative_prompt: value('negative_prompt'),
      init_image: initImageUrl ?? value('init_image'),
      width: value('width'),
      height: value('height'),
      samples: value('samples'),
      num_inference_steps: value('num_inference_steps'),
      guidance_scale: Number(value('guidance_scale') ?? 7.5),
      strength: Number(value('strength') ?? 0.7),
      seed: value('seed'),
      safety_checker: 'no',
      enhance_prompt: 'no',
      webhook: null,
      track_id: null,
    },
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const { endpoint, request } = read();
    options.onSubmit(endpoint, request);
  });
  $<HTMLButtonElement>('cancel').addEventListener('click', () => options.onCancel());

  return {
    read,
    load(_endpoint, request) {
      for (const [k, v] of Object.entries(request)) {
        const input = form.querySelector<HTMLInputElement>(`#${k}`);
        if (input && v !== null && v !== undefined && typeof v !== 'object') input.value = String(v);
      }
    },
    useInitImage(url) {
      initImageUrl = url;
      const preview = $<HTMLImageElement>('init-preview');
      preview.hidden = false;
      preview.src = url;
    },
    applyModelDefaults(entry) {
      const d = entry.defaults;
      if (!d) return;
      $<HTMLInputElement>('num_inference_steps').value = String(d.steps);
      $<HTMLInputElement>('guidance_scale').value = String(d.guidanceScale);
      $<HTMLInputElement>('strength').value = String(d.strength);
    },
    setBusy(busy) {
      $<HTMLButtonElement>('generate').disabled = busy;
      $<HTMLButtonElement>('cancel').disabled = !busy;
    },
  };
}
