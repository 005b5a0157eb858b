/**
 * The guard between a link's ?endpoint= and the saved API key. A link can name any server; if the
 * saved key followed it, opening a link would hand the key to whoever wrote it. So when the address
 * names an endpoint other than the saved one, the key is held back and a banner asks the user:
 * allow it for this visit (nothing is stored; the next visit asks again), or go back to the saved
 * endpoint. Requests that carry their own `key` are unaffected: that key is the caller's to send.
 */
import { DEFAULT_ENDPOINT } from '../api/remote-client.ts';
import type { ActiveConnection } from './settings.ts';

export interface EndpointGuard {
  /** The saved key when it may go to the active endpoint, '' while it is held back. */
  key(): string;
}

export interface EndpointGuardOptions {
  /** The banner element (#endpoint-banner in index.html). */
  banner: HTMLElement;
  connection: ActiveConnection;
  savedKey: string;
  savedEndpoint: string;
  /** Opens the page without ?endpoint= (injectable for tests). */
  navigate?: (url: string) => void;
  /** Called when the user allows the key for this visit. */
  onAllow?: () => void;
}

/** The host a user recognises, or the whole text when it is not a URL. */
export function endpointHost(endpoint: string): string {
  try {
    return new URL(endpoint.trim() || DEFAULT_ENDPOINT).host;
  } catch {
    return endpoint;
  }
}

export function mountEndpointGuard(o: EndpointGuardOptions): EndpointGuard {
  let allowed = !o.connection.endpointNeedsConfirmation;
  const held = () => !allowed && o.savedKey !== '';
  const navigate = o.navigate ?? ((url: string) => location.assign(url));
  const banner = o.banner;
  if (held()) {
    const target = endpointHost(o.connection.endpoint);
    const saved = endpointHost(o.savedEndpoint);
    banner.replaceChildren();
    const text = document.createElement('span');
    text.id = 'endpoint-banner-text';
    text.textContent = `This link sends hosted-API requests to ${target} instead of your saved endpoint (${saved}). `
      + `Your saved API key is not sent to ${target} unless you allow it for this visit.`;
    const allow = document.createElement('button');
    allow.type = 'button';
    allow.id = 'endpoint-allow';
    allow.textContent = `Use my key with ${target} for this visit`;
    const back = document.createElement('button');
    back.type = 'button';
    back.id = 'endpoint-saved';
    back.className = 'secondary';
    back.textContent = `Use ${saved} instead`;
    allow.addEventListener('click', () => {
      allowed = true;
      banner.hidden = true;
      o.onAllow?.();
    });
    back.addEventListener('click', () => {
      const url = new URL(location.href);
      url.searchParams.delete('endpoint');
      navigate(url.href);
    });
    banner.append(text, allow, back);
    banner.hidden = false;
  }
  return { key: () => (allowed ? o.savedKey : '') };
}
