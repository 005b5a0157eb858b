/**
 * Model facts read from the repository's own files (diffusers / optimum layout), never assumed:
 * the VAE's scaling factor and latent channels, the scheduler class and config, the tokenizer.
 */
import type { SchedulerConfig } from '../engine/schedulers/types.ts';

export interface TokenizerFiles {
  vocab: Record<string, number>;
  merges: string;
  maxLength: number;
  padTokenId?: number;
}

export interface ModelConfig {
  scalingFactor: number;
  latentChannels: number;
  schedulerClass: string;
  schedulerConfig: SchedulerConfig;
  /** tokenizer/, and for SDXL tokenizer_2/. */
  tokenizers: TokenizerFiles[];
  /** model_index.json, where the repository has one (diffusers' component names, the pipeline class). */
  modelIndex: Record<string, unknown> | null;
}

/** The files of one tokenizer folder. */
export function tokenizerFiles(dir: string) {
  return {
    vocab: `${dir}/vocab.json`,
    merges: `${dir}/merges.txt`,
    // the fast tokenizer's single file: some exports ship only this one (with tokenizer_config.json)
    tokenizerJson: `${dir}/tokenizer.json`,
    config: `${dir}/tokenizer_config.json`,
  };
}

/** The small files a pipeline needs besides the ONNX graphs, relative to the repository root. */
export const CONFIG_FILES = {
  modelIndex: 'model_index.json',
  scheduler: 'scheduler/scheduler_config.json',
  vaeDecoder: 'vae_decoder/config.json',
  vaeEncoder: 'vae_encoder/config.json',
  vocab: 'tokenizer/vocab.json',
  merges: 'tokenizer/merges.txt',
  tokenizerConfig: 'tokenizer/tokenizer_config.json',
} as const;

export const TOKENIZER_DIRS = ['tokenizer', 'tokenizer_2'] as const;

/** Each component's graph where the store keeps it (catalogue entries map these to the real file names). */
export const GRAPH_FILES = {
  textEncoder: 'text_encoder/model.onnx',
  textEncoder2: 'text_encoder_2/model.onnx',
  unet: 'unet/model.onnx',
  vaeEncoder: 'vae_encoder/model.onnx',
  vaeDecoder: 'vae_decoder/model.onnx',
} as const;

type ReadText = (path: string) => Promise<string | null>;

async function readJson(read: ReadText, path: string): Promise<Record<string, unknown> | null> {
  const text = await read(path);
  if (text === null) return null;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    throw new Error(`${path} is not valid JSON`);
  }
}

/** vocab + merges from vocab.json and merges.txt, or from the BPE model inside tokenizer.json. */
async function readBpe(read: ReadText, dir: string): Promise<{ vocab: Record<string, number>; merges: string } | null> {
  const f = tokenizerFiles(dir);
  const vocab = await readJson(read, f.vocab);
  const merges = await read(f.merges);
  if (vocab && merges !== null) return { vocab: vocab as Record<string, number>, merges };
  const fast = await readJson(read, f.tokenizerJson);
  const model = fast?.model as { vocab?: unknown; merges?: unknown } | undefined;
  if (!model || typeof model.vocab !== 'object' || model.vocab === null || !Array.isArray(model.merges)) return null;
  // tokenizers writes merges as "a b" strings (older) or [a, b] pairs (newer); merges.txt has one per line.
  const lines = model.merges.map((m: unknown) => (Array.isArray(m) ? m.join(' ') : String(m)));
  return { vocab: model.vocab as Record<string, number>, merges: `#version: 0.2\n${lines.join('\n')}\n` };
}

async function readTokenizer(read: ReadText, dir: string): Promise<TokenizerFiles | null> {
  const bpe = await readBpe(read, dir);
  if (!bpe) return null;
  const tokConfig = (await readJson(read, tokenizerFiles(dir).config)) ?? {};
  const padToken = typeof tokConfig.pad_token === 'string' ? tokConfig.pad_token
    : typeof (tokConfig.pad_token as { content?: unknown } | undefined)?.content === 'string' ? (tokConfig.pad_token as { content: string }).content
    : undefined;
  return {
    vocab: bpe.vocab,
    merges: bpe.merges,
    maxLength: typeof tokConfig.model_max_length === 'number' && tokConfig.model_max_length < 1e6 ? tokConfig.model_max_length : 77,
    padTokenId: padToken !== undefined ? bpe.vocab[padToken] : undefined,
  };
}

export async function readModelConfig(read: ReadText): Promise<ModelConfig> {
  const scheduler = await readJson(read, CONFIG_FILES.scheduler);
  if (!scheduler) throw new Error(`the model has no ${CONFIG_FILES.scheduler}`);
  const vae = (await readJson(read, CONFIG_FILES.vaeDecoder)) ?? (await readJson(read, CONFIG_FILES.vaeEncoder)) ?? {};
  const tokenizers: TokenizerFiles[] = [];
  for (const dir of TOKENIZER_DIRS) {
    const t = await readTokenizer(read, dir);
    if (!t) break;
    tokenizers.push(t);
  }
  if (tokenizers.length === 0) throw new Error('the model has no tokenizer: tokenizer/vocab.json and tokenizer/merges.txt, or tokenizer/tokenizer.json');
  return {
    // 0.18215 is SD 1.x/2.x's factor; an export that omits it is an SD 1.x/2.x export.
    scalingFactor: typeof vae.scaling_factor === 'number' ? vae.scaling_factor : 0.18215,
    latentChannels: typeof vae.latent_channels === 'number' ? vae.latent_channels : 4,
    schedulerClass: typeof scheduler._class_name === 'string' ? scheduler._class_name : 'PNDMScheduler',
    schedulerConfig: scheduler,
    tokenizers,
    modelIndex: await readJson(read, CONFIG_FILES.modelIndex).catch(() => null),
  };
}
