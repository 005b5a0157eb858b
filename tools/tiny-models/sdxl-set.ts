/**
 * A whole tiny SDXL model set in the layout of the optimum / browser-demo SDXL ONNX exports:
 * model_index.json, scheduler/, tokenizer/ + tokenizer_2/, text_encoder/ + text_encoder_2/, unet/,
 * vae_decoder/ + vae_encoder/. Not part of `npm run models` yet: callers write the files.
 */
import { type FloatIO } from './common.ts';
import {
  buildSdxlTextEncoder,
  buildSdxlTextEncoder2,
  sdxlTextEncoder2Config,
  sdxlTextEncoderConfig,
  type SdxlTextEncoder2Spec,
  type SdxlTextEncoderSpec,
  type TextEncoderFixedDims,
} from './sdxl-text-encoders.ts';
import { buildSdxlUNet, sdxlUNetConfig, type SdxlUNetSpec } from './sdxl-unet.ts';
import { schedulerConfig, type SetFile } from './sets.ts';
import { buildTinyTokenizer, mergesText, specialTokensMap, tokenizerConfig, type TinyTokenizerFiles } from './tokenizer.ts';
import { buildVaeDecoder, buildVaeEncoder, vaeConfig } from './vae.ts';

export const SDXL_SCALING_FACTOR = 0.13025;
/** OpenCLIP's tokenizer pads with "!" (id 0 in CLIP's vocabulary and the tiny one), not <|endoftext|>. */
export const TOKENIZER_2_PAD = '!';

const DIFFUSERS_VERSION = '0.27.0';

export interface SdxlSetOptions {
  /** Float type of every graph's float inputs and outputs. Default float32. */
  io?: FloatIO;
  /** The UNet's options beyond `io` (timestep dtype and dims, fixed dims, size). */
  unet?: Omit<SdxlUNetSpec, 'io'>;
  /** Fixed batch / sequence of both text encoders (WebNN-style replicas). */
  textEncoderFixed?: TextEncoderFixedDims;
  /** model_index.json's force_zeros_for_empty_prompt. Default true, as SDXL base and Lightning. */
  forceZerosForEmptyPrompt?: boolean;
  description?: string;
  /** Reuse one tokenizer build across sets. */
  tokenizer?: TinyTokenizerFiles;
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

export function sdxlModelIndex(forceZerosForEmptyPrompt: boolean, description: string): Record<string, unknown> {
  return {
    _class_name: 'StableDiffusionXLPipeline',
    _diffusers_version: DIFFUSERS_VERSION,
    _tiny_model_set: description,
    force_zeros_for_empty_prompt: forceZerosForEmptyPrompt,
    scheduler: ['diffusers', 'EulerDiscreteScheduler'],
    text_encoder: ['transformers', 'CLIPTextModel'],
    text_encoder_2: ['transformers', 'CLIPTextModelWithProjection'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    tokenizer_2: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'UNet2DConditionModel'],
    vae: ['diffusers', 'AutoencoderKL'],
  };
}

/** The SD scheduler values with SDXL-Lightning's trailing timestep spacing. */
export function sdxlSchedulerConfig(): Record<string, unknown> {
  return {
    ...schedulerConfig(),
    interpolation_type: 'linear',
    sample_max_value: 1,
    timestep_spacing: 'trailing',
    use_karras_sigmas: false,
  };
}

export function sdxlVaeConfig(): Record<string, unknown> {
  return { ...vaeConfig(), scaling_factor: SDXL_SCALING_FACTOR };
}

export function tokenizer2Config(): Record<string, unknown> {
  return { ...tokenizerConfig(), pad_token: TOKENIZER_2_PAD };
}

export function tokenizer2SpecialTokensMap(): Record<string, string> {
  return { ...specialTokensMap(), pad_token: TOKENIZER_2_PAD };
}

const DEFAULT_DESCRIPTION =
  'Tiny SDXL-architecture models with seeded random weights: two CLIP-style text encoders (hidden 32, int32 ids; hidden 48 with a projection, int64 ids), a text-time UNet, the tiny VAE with SDXL\'s scaling factor.';

/** Every file of a tiny SDXL set, sorted by path, as TinyModelFactory.setFiles gives the SD sets'. */
export function sdxlSetFiles(options: SdxlSetOptions = {}): SetFile[] {
  const io = options.io ?? 'float32';
  const tok = options.tokenizer ?? buildTinyTokenizer();
  const padId = tok.vocab[TOKENIZER_2_PAD];
  if (padId === undefined) throw new Error(`the tiny vocabulary has no "${TOKENIZER_2_PAD}"`);
  const te1: SdxlTextEncoderSpec = { vocabSize: tok.vocabSize, endId: tok.endId, io, fixed: options.textEncoderFixed };
  const te2: SdxlTextEncoder2Spec = { vocabSize: tok.vocabSize, endId: tok.endId, io, fixed: options.textEncoderFixed };
  const unet: SdxlUNetSpec = { ...options.unet, io };
  const vocab = json(tok.vocab);
  const merges = new TextEncoder().encode(mergesText(tok.merges));
  const files: SetFile[] = [
    { path: 'model_index.json', bytes: json(sdxlModelIndex(options.forceZerosForEmptyPrompt ?? true, options.description ?? DEFAULT_DESCRIPTION)) },
    { path: 'scheduler/scheduler_config.json', bytes: json(sdxlSchedulerConfig()) },
    { path: 'tokenizer/vocab.json', bytes: vocab },
    { path: 'tokenizer/merges.txt', bytes: merges },
    { path: 'tokenizer/tokenizer_config.json', bytes: json(tokenizerConfig()) },
    { path: 'tokenizer/special_tokens_map.json', bytes: json(specialTokensMap()) },
    { path: 'tokenizer_2/vocab.json', bytes: vocab },
    { path: 'tokenizer_2/merges.txt', bytes: merges },
    { path: 'tokenizer_2/tokenizer_config.json', bytes: json(tokenizer2Config()) },
    { path: 'tokenizer_2/special_tokens_map.json', bytes: json(tokenizer2SpecialTokensMap()) },
    { path: 'text_encoder/model.onnx', bytes: buildSdxlTextEncoder(te1).encode() },
    { path: 'text_encoder/config.json', bytes: json(sdxlTextEncoderConfig(te1, tok.startId)) },
    { path: 'text_encoder_2/model.onnx', bytes: buildSdxlTextEncoder2(te2).encode() },
    { path: 'text_encoder_2/config.json', bytes: json(sdxlTextEncoder2Config(te2, tok.startId, padId)) },
    { path: 'unet/model.onnx', bytes: buildSdxlUNet(unet).encode() },
    { path: 'unet/config.json', bytes: json(sdxlUNetConfig(unet)) },
    { path: 'vae_encoder/model.onnx', bytes: buildVaeEncoder(io).encode() },
    { path: 'vae_encoder/config.json', bytes: json(sdxlVaeConfig()) },
    { path: 'vae_decoder/model.onnx', bytes: buildVaeDecoder(io).encode() },
    { path: 'vae_decoder/config.json', bytes: json(sdxlVaeConfig()) },
  ];
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
