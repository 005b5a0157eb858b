/**
 * The installable, offline side of the page: registers the service worker that vite-plugin-pwa builds
 * (see vite.config.ts), says when the page runs from its cache, offers "Install app" when the browser
 * allows it, and tells the user when a new version has taken over.
 *
 * The service worker calls skipWaiting + clientsClaim, so a new version controls this page as soon as it
 * is installed and any next load runs it. The page is not reloaded for the user: a generation may be
 * running, so the banner offers "Reload now" instead.
 */
import { Workbox } from 'workbox-window';

/** Chromium's install prompt event; not in TypeScript's DOM types. */
interface BeforeInstallPromptEvent extends Event {
  prompt(): Promise<void>;
  readonly userChoice: Promise<{ outcome: 'accepted' | 'dismissed'; platform: string }>;
}

export const PWA_TEXT = {
  available: 'Available offline',
  offline: 'Offline: running from the app’s cache',
  offlineUncached: 'Offline',
  installed: 'Installed',
} as const;

export interface PwaElements {
  status: HTMLElement;
  install: HTMLButtonElement;
  banner: HTMLElement;
  reload: HTMLButtonElement;
}

function findElements(doc: Document): PwaElements | null {
  const status = doc.getElementById('pwa-status');
  const install = doc.getElementById('install');
  const banner = doc.getElementById('update-banner');
  const reload = doc.getElementById('update-reload');
  if (!status || !(install instanceof HTMLButtonElement) || !banner || !(reload instanceof HTMLButtonElement)) return null;
  return { status, install, banner, reload };
}

/** "Install app": shown while the browser holds a deferred install prompt, hidden once used or installed. */
export function wireInstall(el: PwaElements, win: Window): void {
  let deferred: BeforeInstallPromptEvent | null = null;
  const standalone = win.matchMedia('(display-mode: standalone)').matches;
  win.addEventListener('beforeinstallprompt', (e) => {
    if (standalone) return;
    e.preventDefault(); // keep the browser's own mini-infobar away; the button offers it instead
    deferred = e as BeforeInstallPromptEvent;
    el.install.hidden = false;
  });
  el.install.addEventListener('click', async () => {
    const prompt = deferred;
    if (!prompt) return;
    // A prompt can be shown once; the browser fires beforeinstallprompt again if the user may still install.
    deferred = null;
    el.install.hidden = true;
    await prompt.prompt();
    await prompt.userChoice;
  });
  win.addEventListener('appinstalled', () => {
    deferred = null;
    el.install.hidden = true;
    el.status.textContent = PWA_TEXT.installed;
  });
}

/** The status line: whether the page could start offline, and whether it is offline now. */
export function renderStatus(el: PwaElements, online: boolean, controlled: boolean): void {
  el.status.textContent = !online ? (controlled ? PWA_TEXT.offline : PWA_TEXT.offlineUncached) : controlled ? PWA_TEXT.available : '';
}

/**
 * Shows the update banner. `activateWaiting` is set when the new version is still waiting (a service worker
 * without skipWaiting): "Reload now" then asks it to take over first.
 */
export function showUpdate(el: PwaElements, reload: () => void, activateWaiting?: () => Promise<void>): void {
  el.banner.hidden = false;
  el.reload.onclick = () => {
    el.reload.disabled = true;
    if (activateWaiting) void activateWaiting().then(reload, reload);
    else reload();
  };
}

/** Registers the service worker and wires the update banner and the status line to its life cycle. */
export function registerServiceWorker(el: PwaElements, win: Window): void {
  const sw = win.navigator.serviceWorker;
  const base = import.meta.env.BASE_URL;
  const wb = new Workbox(`${base}sw.js`, { scope: base });
  // Controlled at start means the next controller change is a new version, not the first install.
  let controlled = sw.controller !== null;
  const refreshStatus = () => renderStatus(el, win.navigator.onLine, controlled);
  win.addEventListener('online', refreshStatus);
  win.addEventListener('offline', refreshStatus);
  refreshStatus();

  wb.addEventListener('controlling', () => {
    if (controlled) showUpdate(el, () => win.location.reload());
    controlled = true;
    refreshStatus();
  });
  wb.addEventListener('waiting', () => {
    showUpdate(el, () => win.location.reload(), () => new Promise<void>((resolve) => {
      // Reload once the waiting version controls the page; give up waiting after a few seconds.
      sw.addEventListener('controllerchange', () => resolve(), { once: true });
      win.setTimeout(resolve, 5000);
      wb.messageSkipWaiting();
    }));
  });
  void wb.register().then(() => {
    // Long-lived tabs: look for a new version hourly (the browser also checks on every navigation).
    win.setInterval(() => { if (win.navigator.onLine) void wb.update(); }, 60 * 60 * 1000);
  }).catch((e: unknown) => {
    console.warn('The service worker could not be registered; the app will not work offline:', e);
  });
}

export function startPwa(win: Window = window): void {
  const el = findElements(win.document);
  if (!el) return;
  wireInstall(el, win);
  // The dev server builds no service worker (vite-plugin-pwa's dev mode is off), so only built pages register.
  if (!('serviceWorker' in win.navigator) || !import.meta.env.PROD) return;
  registerServiceWorker(el, win);
}

startPwa();
