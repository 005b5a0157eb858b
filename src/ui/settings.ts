/**
 * The settings dialog: backend mode, the hosted API's key and endpoint, and the colour theme.
 *
 * Everything lives in localStorage. The theme applies at once; mode, endpoint and key are read
 * once when the client starts (main.ts), so a change to them takes effect on the next load. The
 * key is only ever written to storage and to the password field: never logged, never in a URL.
 */
import type { Settings } from './contracts.ts';
import { DEFAULT_ENDPOINT } from '../api/remote-client.ts';
import './styles/settings.css';

/** Storage keys; 'sdapi.key' predates this dialog (main.ts read it first), so it stays. */
export const SETTINGS_STORAGE = {
  mode: 'sdapi.mode',
  key: 'sdapi.key',
  endpoint: 'sdapi.endpoint',
  hubMirror: 'sdapi.hubMirror',
  theme: 'sdapi.theme',
} as const;

export const DEFAULT_SETTINGS: Settings = { mode: 'auto', key: '', endpoint: '', hubMirror: '', theme: 'system' };

const MODES: readonly Settings['mode'][] = ['auto', 'local', 'remote'];
const THEMES: readonly Settings['theme'][] = ['system', 'light', 'dark'];

type KeyValueStore = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

function pick<T extends string>(value: string | null, allowed: readonly T[], fallback: T): T {
  return allowed.includes(value as T) ? (value as T) : fallback;
}

/** Storage can throw (privacy modes, disabled cookies); the defaults are then the settings. */
function safeStorage(): KeyValueStore | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

export function loadSettings(storage: KeyValueStore | null = safeStorage()): Settings {
  const get = (k: string) => {
    try {
      return storage?.getItem(k) ?? null;
    } catch {
      return null;
    }
  };
  return {
    mode: pick(get(SETTINGS_STORAGE.mode), MODES, DEFAULT_SETTINGS.mode),
    key: get(SETTINGS_STORAGE.key) ?? '',
    endpoint: get(SETTINGS_STORAGE.endpoint) ?? '',
    hubMirror: get(SETTINGS_STORAGE.hubMirror) ?? '',
    theme: pick(get(SETTINGS_STORAGE.theme), THEMES, DEFAULT_SETTINGS.theme),
  };
}

export function saveSettings(settings: Settings, storage: KeyValueStore | null = safeStorage()): void {
  if (!storage) return;
  for (const name of ['mode', 'key', 'endpoint', 'hubMirror', 'theme'] as const) {
    const value = settings[name].trim();
    // An empty value is removed rather than stored, so "no key" and "default endpoint" read back as such.
    if (value === '' || value === DEFAULT_SETTINGS[name]) storage.removeItem(SETTINGS_STORAGE[name]);
    else storage.setItem(SETTINGS_STORAGE[name], value);
  }
}

/** 'system' leaves the choice to prefers-color-scheme (styles.css); light and dark pin it. */
export function applyTheme(theme: Settings['theme'], root: HTMLElement = document.documentElement): void {
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
}

/** An endpoint the client can use: empty (the default service) or an http(s) URL. */
export function endpointError(endpoint: string): string | null {
  const value = endpoint.trim();
  if (value === '') return null;
  try {
    const url = new URL(value);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'The endpoint must be an http:// or https:// address.';
    if (url.username || url.password) return 'The endpoint must not contain a user name or password.';
    return null;
  } catch {
    return 'The endpoint must be a full address, such as https://stablediffusionapi.com.';
  }
}

/** What the running page actually uses, so the dialog can say when the address bar overrides it. */
export interface ActiveConnection {
  mode: Settings['mode'];
  endpoint: string;
  /** The settings that ?mode= / ?endpoint= override for this visit. */
  fromUrl: { mode: boolean; endpoint: boolean };
  /**
   * The address names another endpoint than the saved one. A link must never redirect the saved
   * key, so it is held back from that endpoint until the user allows it in the page, for this visit.
   */
  endpointNeedsConfirmation: boolean;
}

/** An endpoint as the client would use it, for comparing two spellings of the same one. */
export function canonicalEndpoint(endpoint: string): string {
  const value = endpoint.trim() || DEFAULT_ENDPOINT;
  try {
    return new URL(value).href.replace(/\/+$/, '');
  } catch {
    return value.replace(/\/+$/, '');
  }
}

export interface SettingsOptions {
  active?: ActiveConnection;
  storage?: KeyValueStore | null;
  /** How "Save and reload" reloads; injectable for tests. */
  reload?: () => void;
}

export interface SettingsHandle {
  /** The stored settings (after any save). */
  readonly settings: Settings;
  open(): void;
  close(): void;
}

/**
 * Wires the dialog (#settings-dialog, markup in index.html) and its opener. Applies the stored theme
 * straight away so the page is drawn in it.
 */
export function mountSettings(dialog: HTMLDialogElement, opener: HTMLButtonElement, options: SettingsOptions = {}): SettingsHandle {
  const storage = options.storage === undefined ? safeStorage() : options.storage;
  const reload = options.reload ?? (() => location.reload());
  let settings = loadSettings(storage);
  applyTheme(settings.theme);

  const form = dialog.querySelector<HTMLFormElement>('form')!;
  const field = <T extends HTMLElement>(name: string) => dialog.querySelector<T>(`#settings-${name}`)!;
  const keyInput = field<HTMLInputElement>('key');
  const keyToggle = field<HTMLButtonElement>('key-toggle');
  const endpointInput = field<HTMLInputElement>('endpoint');
  const endpointMessage = field<HTMLElement>('endpoint-error');
  const mirrorInput = field<HTMLInputElement>('hub-mirror');
  const mirrorMessage = field<HTMLElement>('hub-mirror-error');
  const notice = field<HTMLElement>('notice');
  const overrides = field<HTMLElement>('overrides');
  endpointInput.placeholder = DEFAULT_ENDPOINT;

  const radios = (name: string) => [...form.querySelectorAll<HTMLInputElement>(`input[name="${name}"]`)];
  const checked = (name: string) => radios(name).find((r) => r.checked)?.value ?? null;

  const read = (): Settings => ({
    mode: pick(checked('mode'), MODES, settings.mode),
    key: keyInput.value.trim(),
    endpoint: endpointInput.value.trim(),
    hubMirror: mirrorInput.value.trim(),
    theme: pick(checked('theme'), THEMES, settings.theme),
  });

  const connectionChanged = () => {
    const now = read();
    return now.mode !== settings.mode || now.key !== settings.key || now.endpoint !== settings.endpoint || now.hubMirror !== settings.hubMirror;
  };

  const showKey = (visible: boolean) => {
    keyInput.type = visible ? 'text' : 'password';
    // The label names the action, so no aria-pressed on top of it (that would read "Hide key, pressed").
    keyToggle.textContent = visible ? 'Hide key' : 'Show key';
  };

  const fill = () => {
    for (const r of radios('mode')) r.checked = r.value === settings.mode;
    for (const r of radios('theme')) r.checked = r.value === settings.theme;
    keyInput.value = settings.key;
    endpointInput.value = settings.endpoint;
    mirrorInput.value = settings.hubMirror;
    endpointMessage.textContent = '';
    mirrorMessage.textContent = '';
    endpointInput.removeAttribute('aria-invalid');
    showKey(false);
    updateNotice();
  };

  const updateNotice = () => {
    notice.textContent = connectionChanged()
      ? 'Mode, endpoint and key take effect when the page reloads: use “Save and reload”.'
      : 'Mode, endpoint and key take effect when the page reloads. The theme applies at once.';
    const a = options.active;
    const overridden = a ? [a.fromUrl.mode && `mode=${a.mode}`, a.fromUrl.endpoint && 'endpoint'].filter(Boolean) : [];
    overrides.hidden = overridden.length === 0;
    overrides.textContent = overridden.length
      ? `This visit uses ${overridden.join(' and ')} from the page address, which overrides the stored setting until you open the app without it.`
      : '';
  };

  const save = (): boolean => {
    const next = read();
    const problem = endpointError(next.endpoint);
    endpointMessage.textContent = problem ?? '';
    const mirrorProblem = endpointError(next.hubMirror);
    mirrorMessage.textContent = mirrorProblem ?? '';
    if (problem || mirrorProblem) {
      const bad = problem ? endpointInput : mirrorInput;
      bad.setAttribute('aria-invalid', 'true');
      bad.focus();
      return false;
    }
    endpointInput.removeAttribute('aria-invalid');
    mirrorInput.removeAttribute('aria-invalid');
    saveSettings(next, storage);
    settings = loadSettings(storage);
    return true;
  };

  // The theme is a display preference with nothing to confirm: it applies and is kept on change.
  for (const r of radios('theme')) {
    r.addEventListener('change', () => {
      const theme = pick(checked('theme'), THEMES, settings.theme);
      applyTheme(theme);
      settings = { ...settings, theme };
      saveSettings({ ...loadSettings(storage), theme }, storage);
    });
  }
  form.addEventListener('input', updateNotice);
  form.addEventListener('change', updateNotice);
  keyToggle.addEventListener('click', () => showKey(keyInput.type === 'password'));

  field<HTMLButtonElement>('save').addEventListener('click', () => {
    if (save()) dialog.close('saved');
  });
  field<HTMLButtonElement>('save-reload').addEventListener('click', () => {
    if (save()) {
      dialog.close('saved');
      reload();
    }
  });
  field<HTMLButtonElement>('cancel').addEventListener('click', () => dialog.close('cancel'));
  // Escape closes too; either way the key goes back to hidden for the next opening.
  dialog.addEventListener('close', () => showKey(false));

  const open = () => {
    fill();
    dialog.showModal();
    opener.setAttribute('aria-expanded', 'true');
  };
  dialog.addEventListener('close', () => {
    opener.setAttribute('aria-expanded', 'false');
    opener.focus();
  });
  opener.setAttribute('aria-haspopup', 'dialog');
  opener.setAttribute('aria-expanded', 'false');
  opener.addEventListener('click', open);

  return {
    get settings() {
      return settings;
    },
    open,
    close: () => dialog.close(),
  };
}

/**
 * The mode and endpoint the client starts with: the page address (?mode=, ?endpoint=) wins for this
 * visit, the stored settings otherwise. The key never comes from the address, and the saved key
 * does not follow an address's endpoint without the user's word (endpointNeedsConfirmation).
 */
export function resolveConnection(params: URLSearchParams, stored: Settings): ActiveConnection {
  const urlMode = params.get('mode');
  const modeFromUrl = MODES.includes(urlMode as Settings['mode']);
  const urlEndpoint = params.get('endpoint');
  const endpointFromUrl = urlEndpoint !== null && urlEndpoint.trim() !== '';
  const endpoint = endpointFromUrl ? urlEndpoint.trim() : stored.endpoint;
  return {
    mode: modeFromUrl ? (urlMode as Settings['mode']) : stored.mode,
    endpoint,
    fromUrl: { mode: modeFromUrl, endpoint: endpointFromUrl },
    endpointNeedsConfirmation: endpointFromUrl && canonicalEndpoint(endpoint) !== canonicalEndpoint(stored.endpoint),
  };
}
