/** The settings' storage round trip, the URL override rules, and endpoint validation (DOM-free parts of src/ui/settings.ts). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, SETTINGS_STORAGE, endpointError, loadSettings, resolveConnection, saveSettings } from '../../src/ui/settings.ts';

function memoryStorage(initial: Record<string, string> = {}) {
  const data = new Map(Object.entries(initial));
  return {
    data,
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => void data.set(k, v),
    removeItem: (k: string) => void data.delete(k),
  };
}

describe('settings storage', () => {
  it('reads the defaults from empty storage, and when storage is unavailable', () => {
    expect(loadSettings(memoryStorage())).toEqual(DEFAULT_SETTINGS);
    expect(loadSettings(null)).toEqual(DEFAULT_SETTINGS);
  });

  it('round-trips every field, keeping the key under sdapi.key', () => {
    const s = memoryStorage();
    saveSettings({ mode: 'remote', key: ' k-123 ', endpoint: 'http://127.0.0.1:9/', hubMirror: 'https://hf-mirror.example', theme: 'dark' }, s);
    expect(s.data.get(SETTINGS_STORAGE.key)).toBe('k-123');
    expect(SETTINGS_STORAGE.key).toBe('sdapi.key');
    expect(loadSettings(s)).toEqual({ mode: 'remote', key: 'k-123', endpoint: 'http://127.0.0.1:9/', hubMirror: 'https://hf-mirror.example', theme: 'dark' });
  });

  it('removes empty and default values instead of storing them', () => {
    const s = memoryStorage({ 'sdapi.key': 'old', 'sdapi.mode': 'local', 'sdapi.theme': 'light', 'sdapi.endpoint': 'https://x.test' });
    saveSettings({ ...DEFAULT_SETTINGS }, s);
    expect([...s.data.keys()]).toEqual([]);
  });

  it('ignores values it does not know (a hand-edited or older storage)', () => {
    expect(loadSettings(memoryStorage({ 'sdapi.mode': 'cloud', 'sdapi.theme': 'sepia' }))).toMatchObject({ mode: 'auto', theme: 'system' });
  });

  it('survives storage that throws', () => {
    const throwing = { getItem: () => { throw new Error('denied'); }, setItem: () => undefined, removeItem: () => undefined };
    expect(loadSettings(throwing)).toEqual(DEFAULT_SETTINGS);
  });
});

describe('resolveConnection', () => {
  const stored = { mode: 'remote', key: 'k', endpoint: 'https://stored.test', hubMirror: '', theme: 'system' } as const;

  it('uses the stored mode and endpoint when the address names none', () => {
    expect(resolveConnection(new URLSearchParams('model=tiny-sd'), stored)).toEqual({
      mode: 'remote', endpoint: 'https://stored.test', fromUrl: { mode: false, endpoint: false }, endpointNeedsConfirmation: false,
    });
  });

  it('lets ?mode= and ?endpoint= win for the visit', () => {
    expect(resolveConnection(new URLSearchParams('mode=local&endpoint=http://127.0.0.1:1'), stored)).toEqual({
      mode: 'local', endpoint: 'http://127.0.0.1:1', fromUrl: { mode: true, endpoint: true }, endpointNeedsConfirmation: true,
    });
  });

  it("holds the saved key back from an address's endpoint unless it is the saved one, however spelt", () => {
    const other = resolveConnection(new URLSearchParams('mode=remote&endpoint=http://attacker.test'), stored);
    expect(other).toMatchObject({ endpoint: 'http://attacker.test', endpointNeedsConfirmation: true });
    const same = resolveConnection(new URLSearchParams('endpoint=https://STORED.test/'), stored);
    expect(same.endpointNeedsConfirmation).toBe(false);
    // Nothing saved means the default service: naming it in the address redirects nothing.
    const unsaved = { ...stored, endpoint: '' };
    expect(resolveConnection(new URLSearchParams('endpoint=https://stablediffusionapi.com'), unsaved).endpointNeedsConfirmation).toBe(false);
    expect(resolveConnection(new URLSearchParams('endpoint=https://stablediffusionapi.com.evil.test'), unsaved).endpointNeedsConfirmation).toBe(true);
  });

  it('ignores an unknown or empty ?mode= and an empty ?endpoint=', () => {
    expect(resolveConnection(new URLSearchParams('mode=turbo&endpoint='), stored)).toMatchObject({ mode: 'remote', endpoint: 'https://stored.test', fromUrl: { mode: false, endpoint: false } });
  });
});

describe('endpointError', () => {
  it('accepts empty (the default service) and http(s) URLs', () => {
    expect(endpointError('')).toBeNull();
    expect(endpointError('https://stablediffusionapi.com')).toBeNull();
    expect(endpointError('http://127.0.0.1:4398/')).toBeNull();
  });

  it('refuses other schemes, credentials in the URL and non-URLs', () => {
    expect(endpointError('ftp://x.test')).toMatch(/http/);
    expect(endpointError('https://user:pw@x.test')).toMatch(/user name or password/);
    expect(endpointError('stablediffusionapi.com')).toMatch(/full address/);
  });
});
