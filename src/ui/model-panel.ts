/**
 * The model panel: pick a model, see whether it is cached and how big it is, download it with
 * bytes, speed and ETA, pause, resume, cancel, delete, add one by URL, and see the storage used.
 */
import type { ModelManager } from '../api/model-manager.ts';
import type { CatalogueEntry } from '../models/catalogue.ts';
import type { DownloadProgress } from '../models/model-source.ts';
import { formatBytes, formatDuration } from './format.ts';

export interface ModelPanel {
  /** The model the form's requests use. */
  readonly selected: string;
  refresh(): Promise<void>;
}

function button(label: string, id: string): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.id = id;
  b.textContent = label;
  return b;
}

export function mountModelPanel(section: HTMLElement, manager: ModelManager, initial: string, onSelect: (id: string) => void): ModelPanel {
  const select = section.querySelector<HTMLSelectElement>('#model')!;
  const bar = section.querySelector<HTMLProgressElement>('#model-progress')!;
  const status = section.querySelector<HTMLElement>('#model-status')!;
  const info = document.createElement('p');
  info.id = 'model-info';
  info.className = 'status';
  const actions = document.createElement('div');
  actions.className = 'actions';
  const download = button('Download', 'model-download');
  const pause = button('Pause', 'model-pause');
  const cancel = button('Cancel download', 'model-cancel');
  const remove = button('Delete', 'model-delete');
  actions.append(download, pause, cancel, remove);
  const storage = document.createElement('p');
  storage.id = 'storage';
  storage.className = 'status';
  const addForm = document.createElement('form');
  addForm.className = 'add-model';
  addForm.innerHTML = '<label>Add a model by URL <input id="model-url" type="url" placeholder="https://huggingface.co/<repo>/resolve/main/"></label>'
    + '<label>Tokenizer and scheduler from (optional) <input id="model-companion" type="url" placeholder="https://huggingface.co/stabilityai/sd-turbo/resolve/main/"></label>'
    + '<button id="model-add" type="submit">Add</button>';
  select.insertAdjacentElement('afterend', info);
  info.insertAdjacentElement('afterend', actions);
  status.insertAdjacentElement('afterend', storage);
  storage.insertAdjacentElement('afterend', addForm);

  let selected = initial;
  let downloading: string | null = null;

  const fill = () => {
    select.replaceChildren(...manager.catalogue.map((m) => new Option(`${m.name}${m.approxBytes ? ` (~${formatBytes(m.approxBytes)})` : ''}`, m.id, false, m.id === selected)));
    select.disabled = false;
  };

  const setError = (text: string) => {
    status.textContent = text;
    status.classList.add('error');
  };

  const describe = (m: CatalogueEntry) => {
    const f = m.features;
    const modes = m.limits ? (Object.entries(m.limits.modes) as [string, true | string][]).filter(([, ok]) => ok === true).map(([mode]) => mode).join(', ') : '';
    const size = m.limits?.fixedSize ? `${m.limits.fixedSize.width}x${m.limits.fixedSize.height} only` : '';
    return [m.description, m.dtype, modes, size, f?.safetyChecker ? 'safety checker' : '', m.license].filter(Boolean).join(' · ');
  };

  async function refresh(): Promise<void> {
    const entry = manager.entry(selected);
    if (!entry) return;
    const st = await manager.status(selected);
    const total = st?.bytesTotal ?? entry.approxBytes ?? null;
    const cached = entry.bundled ? 'bundled with the app' : st?.complete ? `downloaded (${formatBytes(st.bytesStored)})`
      : st && st.bytesStored > 0 ? `partly downloaded: ${formatBytes(st.bytesStored)}${total ? ` of ${formatBytes(total)}` : ''}` : 'not downloaded';
    info.textContent = `${describe(entry)} — ${cached}`;
    info.dataset.cached = entry.bundled || st?.complete ? 'complete' : st && st.bytesStored > 0 ? 'partial' : 'none';
    const busy = downloading === selected;
    download.textContent = st && st.bytesStored > 0 && !st.complete ? 'Resume download' : 'Download';
    download.disabled = busy || Boolean(st?.complete) || Boolean(entry.bundled);
    pause.disabled = !busy;
    cancel.disabled = !busy && !(st && st.bytesStored > 0 && !st.complete);
    remove.disabled = busy || !st || st.bytesStored === 0;
    const s = await manager.storage();
    storage.textContent = s.quota
      ? `Storage: ${formatBytes(s.usage ?? 0)} used of ${formatBytes(s.quota)} available to this site${s.persisted ? ' (persistent)' : ''}`
      : 'Storage: unknown';
  }

  const showProgress = (p: DownloadProgress) => {
    bar.hidden = false;
    const loaded = p.modelLoaded ?? p.loaded;
    const total = p.modelTotal ?? p.total;
    if (total) bar.value = loaded / total;
    const speed = p.bytesPerSecond ? `${formatBytes(p.bytesPerSecond)}/s` : '';
    const eta = p.etaSeconds != null ? `${formatDuration(p.etaSeconds)} left` : '';
    status.classList.remove('error');
    status.textContent = p.verifying
      ? `Verifying ${p.file}…`
      : `${formatBytes(loaded)}${total ? ` of ${formatBytes(total)}` : ''}${speed ? ` · ${speed}` : ''}${eta ? ` · ${eta}` : ''} (${p.file})`;
  };

  select.addEventListener('change', () => {
    selected = select.value;
    onSelect(selected);
    status.classList.remove('error');
    status.textContent = '';
    void refresh();
  });

  download.addEventListener('click', async () => {
    const id = selected;
    downloading = id;
    await refresh();
    const r = await manager.download(id, showProgress);
    downloading = null;
    bar.hidden = true;
    if (r.ok) {
      status.classList.remove('error');
      status.textContent = `${manager.entry(id)?.name ?? id} is downloaded and verified`;
    } else if (r.kind === 'paused') {
      status.classList.remove('error');
      status.textContent = 'Paused: resume any time, also after closing the page';
    } else {
      setError(r.message);
    }
    await refresh();
  });
  pause.addEventListener('click', () => manager.pause(selected));
  cancel.addEventListener('click', async () => {
    await manager.cancel(selected);
    status.classList.remove('error');
    status.textContent = 'Download cancelled; its partial files were removed';
    await refresh();
  });
  remove.addEventListener('click', async () => {
    const r = await manager.delete(selected);
    if (r.ok) {
      status.classList.remove('error');
      status.textContent = `${manager.entry(selected)?.name ?? selected} was deleted`;
    } else setError(r.message);
    await refresh();
  });
  addForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = addForm.querySelector<HTMLInputElement>('#model-url')!;
    const companion = addForm.querySelector<HTMLInputElement>('#model-companion')!;
    status.classList.remove('error');
    status.textContent = 'Reading the repository…';
    const added = await manager.add(input.value.trim(), undefined, companion.value.trim() || undefined);
    if ('status' in added) {
      setError(typeof added.message === 'string' ? added.message : Object.values(added.message).flat().join(' '));
      return;
    }
    selected = added.id;
    fill();
    onSelect(selected);
    input.value = '';
    companion.value = '';
    status.textContent = `${added.name} was added: ${describe(added)}`;
    await refresh();
  });

  fill();
  void refresh();
  return {
    get selected() {
      return selected;
    },
    refresh,
  };
}
