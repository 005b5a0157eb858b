/**
 * The files of a diffusers-ONNX repository added by URL, found the way the repository states them:
 * the hub's tree listing (every file with its size, external-data shards included) where the URL is
 * a hub resolve URL, else HEAD requests for the standard layout. Each component folder's graph is
 * taken as `<component>/model.onnx` (its real name may be model_q4.onnx, …); small graphs (weights in
 * shards) are read at once, so the weights they name are found and what they fix (batch, size, modes)
 * is known before anything big is downloaded. A tokenizer or scheduler the repository lacks comes from
 * a companion repository (e.g. stabilityai/sd-turbo beside an export that ships graphs only).
 */
import { describeModel, GRAPH_COMPONENTS, type GraphComponent, type ModelLimits, type PipelineFamily } from './model-descriptor.ts';
import { readGraphInfo, type GraphInfo } from './onnx-graph.ts';
import type { ModelFile } from './model-source.ts';
import { TOKENIZER_DIRS, tokenizerFiles } from './model-config.ts';

/** Graphs up to this size are read when the model is added: beyond it the weights are inline, and the I/O waits for the download. */
export const GRAPH_READ_LIMIT = 64 * 1024 * 1024;

export class DiscoveryError extends Error {
  override name = 'DiscoveryError';
}

export interface DiscoveredModel {
  files: ModelFile[];
  family: PipelineFamily;
  limits: ModelLimits;
}

/** What a repository has: file path -> size (null where unknown). */
type Listing = Map<string, number | null>;

interface Repository {
  base: string;
  /** Whether a path exists (the listing, or a HEAD request), and its size when known. */
  has(path: string): Promise<boolean>;
  size(path: string): Promise<number | null>;
  /** Every listed path, or null where the server gives no listing. */
  listing: Listing | null;
}

const RESOLVE = /^(https?:\/\/[^/]+)\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/$/;

async function treeListing(base: string, fetchFn: typeof fetch): Promise<Listing | null> {
  const m = RESOLVE.exec(base);
  if (!m) return null;
  const [, origin, repo, revision] = m;
  try {
    const r = await fetchFn(`${origin}/api/models/${repo}/tree/${revision}?recursive=true`);
    if (!r.ok) return null;
    const entries: unknown = await r.json();
    if (!Array.isArray(entries)) return null;
    const out: Listing = new Map();
    for (const e of entries as { type?: unknown; path?: unknown; size?: unknown; lfs?: { size?: unknown } }[]) {
      if (e.type !== 'file' || typeof e.path !== 'string') continue;
      const size = typeof e.lfs?.size === 'number' ? e.lfs.size : typeof e.size === 'number' ? e.size : null;
      out.set(e.path, size);
    }
    return out;
  } catch {
    return null;
  }
}

async function openRepository(baseUrl: string, fetchFn: typeof fetch): Promise<Repository> {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const listing = await treeListing(base, fetchFn);
  const heads = new Map<string, Promise<{ ok: boolean; size: number | null }>>();
  const head = (path: string) => {
    let p = heads.get(path);
    if (!p) {
      p = fetchFn(new URL(path, base).href, { method: 'HEAD' })
        .then((r) => ({ ok: r.ok, size: r.headers.get('x-linked-size') ?? r.headers.get('content-length') }))
        .then(({ ok, size }) => ({ ok, size: size !== null && /^\d+$/.test(size) ? Number(size) : null }))
        .catch(() => ({ ok: false, size: null }));
      heads.set(path, p);
    }
    return p;
  };
  return {
    base,
    listing,
    has: async (path) => (listing ? listing.has(path) : (await head(path)).ok),
    size: async (path) => (listing ? listing.get(path) ?? null : (await head(path)).size),
  };
}

/** The graph file of a component folder: model.onnx, or the one .onnx file there is (model_q4.onnx, …). */
async function graphOf(repo: Repository, component: string): Promise<string | null> {
  const standard = `${component}/model.onnx`;
  if (await repo.has(standard)) return standard;
  if (!repo.listing) return null;
  const candidates = [...repo.listing.keys()].filter((p) => p.startsWith(`${component}/`) && p.endsWith('.onnx') && !p.slice(component.length + 1).includes('/'));
  // a folder with several exports of one graph: the plain one first, quantized ones after, QDQ last
  const rank = (p: string) => (/qdq/i.test(p) ? 2 : /_(q4|int8|uint8|quantized|fp16)/i.test(p) ? 1 : 0);
  candidates.sort((a, b) => rank(a) - rank(b) || a.length - b.length || a.localeCompare(b));
  return candidates[0] ?? null;
}

/** The external-data files beside a graph: those it names (when read), else those its name announces. */
async function externalFiles(repo: Repository, graphPath: string, info: GraphInfo | null): Promise<string[]> {
  const folder = graphPath.slice(0, graphPath.lastIndexOf('/') + 1);
  if (info) {
    const missing: string[] = [];
    for (const location of info.externalData) if (!(await repo.has(folder + location))) missing.push(location);
    if (missing.length) throw new DiscoveryError(`${graphPath} keeps its weights in ${missing.join(', ')}, which the repository does not have.`);
    return info.externalData.map((l) => folder + l);
  }
  const name = graphPath.slice(folder.length);
  if (repo.listing) {
    return [...repo.listing.keys()].filter((p) => p.startsWith(folder) && new RegExp(`^${escape(name)}(_data(_\\d+)?|\\.data)$`).test(p.slice(folder.length)));
  }
  // no listing: the optimum/transformers.js naming, probed shard by shard
  const found: string[] = [];
  for (let i = 0; ; i++) {
    const path = `${graphPath}_data${i === 0 ? '' : `_${i}`}`;
    if (!(await repo.has(path))) break;
    found.push(path);
  }
  return found;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const CONFIG_PATHS = ['model_index.json', 'scheduler/scheduler_config.json', 'vae_decoder/config.json', 'vae_encoder/config.json', 'unet/config.json', 'feature_extractor/preprocessor_config.json'];

async function fetchBytes(url: string, fetchFn: typeof fetch): Promise<Uint8Array | null> {
  try {
    const r = await fetchFn(url);
    return r.ok ? new Uint8Array(await r.arrayBuffer()) : null;
  } catch {
    return null;
  }
}

/** A tokenizer folder's files in `repo`, or null where it has no complete tokenizer there. */
async function tokenizerIn(repo: Repository, dir: string): Promise<string[] | null> {
  const f = tokenizerFiles(dir);
  const config = (await repo.has(f.config)) ? [f.config] : [];
  if ((await repo.has(f.vocab)) && (await repo.has(f.merges))) return [f.vocab, f.merges, ...config];
  if (await repo.has(f.tokenizerJson)) return [f.tokenizerJson, ...config];
  return null;
}

/**
 * Finds the model's files at `baseUrl` (a repository root such as https://huggingface.co/<repo>/resolve/main/),
 * taking a missing tokenizer, scheduler or VAE config from `companionUrl`. Throws DiscoveryError saying what is missing.
 */
export async function discoverModel(baseUrl: string, fetchFn: typeof fetch, options: { companionUrl?: string } = {}): Promise<DiscoveredModel> {
  const repo = await openRepository(baseUrl, fetchFn);
  const companion = options.companionUrl ? await openRepository(options.companionUrl, fetchFn) : null;
  const files: ModelFile[] = [];
  const add = (path: string, from: Repository, realPath = path) => files.push({ path, url: new URL(realPath, from.base).href });

  const graphs: Partial<Record<GraphComponent, GraphInfo>> = {};
  for (const component of GRAPH_COMPONENTS) {
    const real = await graphOf(repo, component);
    if (!real) continue;
    const size = await repo.size(real);
    let info: GraphInfo | null = null;
    if (size !== null && size <= GRAPH_READ_LIMIT) {
      const bytes = await fetchBytes(new URL(real, repo.base).href, fetchFn);
      if (bytes) {
        try {
          info = readGraphInfo(bytes);
        } catch (e) {
          throw new DiscoveryError(`${real} is not a valid ONNX model (${e instanceof Error ? e.message : String(e)}).`);
        }
      }
    }
    // present, even where its I/O is known only after the download
    graphs[component] = info ?? { inputs: [], outputs: [], externalData: [], domains: [], opTypes: [] };
    add(`${component}/model.onnx`, repo, real);
    for (const shard of await externalFiles(repo, real, info)) add(shard, repo);
  }
  const missingGraphs = (['text_encoder', 'unet', 'vae_decoder'] as const).filter((c) => !graphs[c]);
  if (missingGraphs.length) {
    throw new DiscoveryError(`This is not a diffusers-ONNX model, or it cannot be reached: no ${missingGraphs.map((c) => `${c}/*.onnx`).join(', ')}.`);
  }

  const from = async (path: string, alternatives: string[] = [path]): Promise<boolean> => {
    for (const r of [repo, companion]) {
      if (!r) continue;
      for (const real of alternatives) {
        if (await r.has(real)) {
          add(path, r, real);
          return true;
        }
      }
    }
    return false;
  };
  const needed: string[] = [];
  const tokenizerCount = graphs.text_encoder_2 ? 2 : 1;
  for (const dir of TOKENIZER_DIRS.slice(0, tokenizerCount)) {
    const source = (await tokenizerIn(repo, dir)) ? repo : companion && (await tokenizerIn(companion, dir)) ? companion : null;
    if (!source) {
      needed.push(`${dir}/ (vocab.json + merges.txt, or tokenizer.json)`);
      continue;
    }
    for (const path of (await tokenizerIn(source, dir))!) add(path, source);
  }
  if (!(await from('scheduler/scheduler_config.json'))) needed.push('scheduler/scheduler_config.json');
  if (needed.length) {
    const hint = companion ? ` Neither does the companion repository ${companion.base}.` : ' Name a companion repository that has them (for example the original diffusers repository of this model).';
    throw new DiscoveryError(`The repository has no ${needed.join(' and no ')}.${hint}`);
  }
  for (const path of CONFIG_PATHS) {
    if (files.some((f) => f.path === path)) continue;
    // a diffusers (PyTorch) companion keeps one VAE config under vae/
    const alternatives = path === 'vae_decoder/config.json' || path === 'vae_encoder/config.json' ? [path, 'vae/config.json'] : [path];
    if (path === 'vae_encoder/config.json' && !graphs.vae_encoder) continue;
    await from(path, alternatives);
  }

  let modelIndex: Record<string, unknown> | null = null;
  const index = files.find((f) => f.path === 'model_index.json');
  if (index?.url) {
    const bytes = await fetchBytes(index.url, fetchFn);
    try {
      modelIndex = bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>) : null;
    } catch {
      modelIndex = null;
    }
  }
  const descriptor = describeModel({ modelIndex, graphs });
  return { files, family: descriptor.family, limits: { modes: descriptor.modes, fixedSize: descriptor.fixedSize } };
}
