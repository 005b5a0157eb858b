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
  tokenizer: TokenizerFiles;
}

/** The small files a pipeline needs besides the ONNX graphs, relative to the repository root. */
export const CONFIG_FILES = {
  scheduler: 'scheduler/scheduler_config.json',
  vaeDecoder: 'vae_decoder/config.json',
  vaeEncoder: 'vae_encoder/config.json',
  vocab: 'tokenizer/vocab.json',
  merges: 'tokenizer/merges.txt',
  tokenizerConfig: 'tokenizer/tokenizer_config.json',
} as const;

export const GRAPH_FILES = {
  textEncoder: 'text_encoder/model.onnx',
  unet: 'unet/model.onnx',
  vaeEncoder: 'vae_encoder/model.onnx',
  vaeDecoder: 'vae_decoder/model.onnx',
} as const;

type ReadText = (path: string) => Promise<string | null>;

export async function readModelConfig(read: ReadText): Promise<ModelConfig> {
  const json = async (path: string): Promise<Record<string, unknown> | null> => {
    const text = await read(path);
    if (text === null) return null;
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new Error(`${path} is not valid JSON`);
    }
  };
  const scheduler = await json(CONFIG_FILES.scheduler);
  if (!scheduler) throw new Error(`the model has no ${CONFIG_FILES.scheduler}`);
  const vae = (await json(CONFIG_FILES.vaeDecoder)) ?? (await json(CONFIG_FILES.vaeEncoder)) ?? {};
  const vocab = await json(CONFIG_FILES.vocab);
  const merges = await read(CONFIG_FILES.merges);
  if (!vocab || merges === null) throw new Error('the model has no tokenizer/vocab.json and tokenizer/merges.txt');
  const tokConfig = (await json(CONFIG_FILES.tokenizerConfig)) ?? {};
  const padToken = typeof tokConfig.pad_token === 'string' ? tokConfig.pad_token
    : typeof (tokConfig.pad_token as { content?: unknown } | undefined)?.content === 'string' ? (tokConfig.pad_token as { content: string }).content
    : undefined;
  const vocabMap = vocab as Record<string, number>;
  return {
    // 0.18215 is SD 1.x/2.x's factor; an export that omits it is an SD 1.x/2.x export.
    scalingFactor: typeof vae.scaling_factor === 'number' ? vae.scaling_factor : 0.18215,
    latentChannels: typeof vae.latent_channels === 'number' ? vae.latent_channels : 4,
    schedulerClass: typeof scheduler._class_name === 'string' ? scheduler._class_name : 'PNDMScheduler',
    schedulerConfig: scheduler,
    tokenizer: {
      vocab: vocabMap,
      merges,
      maxLength: typeof tokConfig.model_max_length === 'number' && tokConfig.model_max_length < 1e6 ? tokConfig.model_max_length : 77,
      padTokenId: padToken !== undefined ? vocabMap[padToken] : undefined,
    },
  };
}
