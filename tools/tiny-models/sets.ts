/**
 * The tiny model sets: which builder makes each component, and the diffusers-format JSON files
 * around them. A set is a list of (path, bytes) in the layout of the real ORT-web exports.
 */
import type { GraphBuilder } from '../onnx/graph.ts';
import { LATENT_CHANNELS, type FloatIO } from './common.ts';
import { buildSafetyChecker, featureExtractorConfig, safetyCheckerConfig } from './safety-checker.ts';
import { buildTextEncoder, textEncoderConfig, type TextEncoderSpec } from './text-encoder.ts';
import { buildTinyTokenizer, mergesText, specialTokensMap, tokenizerConfig, type TinyTokenizerFiles } from './tokenizer.ts';
import { buildAnalyticUNet } from './unet-analytic.ts';
import { buildUNet, unetConfig } from './unet.ts';
import { buildAnalyticVaeDecoder, buildAnalyticVaeEncoder, buildVaeDecoder, buildVaeEncoder, vaeConfig } from './vae.ts';

export interface SetFile {
  path: string;
  bytes: Uint8Array;
}

export const SET_NAMES = ['tiny-sd', 'tiny-sd-analytic', 'tiny-sd-fp16io', 'tiny-sd-inpaint'] as const;
export type SetName = (typeof SET_NAMES)[number];

type Kind = 'random' | 'analytic';

interface SetSpec {
  description: string;
  pipeline: 'StableDiffusionPipeline' | 'StableDiffusionInpaintPipeline';
  io: FloatIO;
  unet: Kind;
  unetInChannels: number;
  vae: Kind;
  safetyChecker: boolean;
}

const SPECS: Record<SetName, SetSpec> = {
  'tiny-sd': {
    description: 'Tiny SD-architecture models with seeded random weights and a rule-based safety checker.',
    pipeline: 'StableDiffusionPipeline',
    io: 'float32',
    unet: 'random',
    unetInChannels: LATENT_CHANNELS,
    vae: 'random',
    safetyChecker: true,
  },
  'tiny-sd-analytic': {
    description:
      'Analytic VAE (8x8 block average / nearest x8) and UNet (out = sqrt(1 - alphas_cumprod[t]) * sample) so that tests can predict images; text encoder as tiny-sd.',
    pipeline: 'StableDiffusionPipeline',
    io: 'float32',
    unet: 'analytic',
    unetInChannels: LATENT_CHANNELS,
    vae: 'analytic',
    safetyChecker: false,
  },
  'tiny-sd-fp16io': {
    description: 'tiny-sd with float16 graph inputs and outputs (float16 timestep), as the fp16 ORT-web exports.',
    pipeline: 'StableDiffusionPipeline',
    io: 'float16',
    unet: 'random',
    unetInChannels: LATENT_CHANNELS,
    vae: 'random',
    safetyChecker: false,
  },
  'tiny-sd-inpaint': {
    description: 'tiny-sd with a 9-channel inpainting UNet (latents, mask, masked-image latents).',
    pipeline: 'StableDiffusionInpaintPipeline',
    io: 'float32',
    unet: 'random',
    unetInChannels: 9,
    vae: 'random',
    safetyChecker: false,
  },
};

const DIFFUSERS_VERSION = '0.27.0';

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

export function schedulerConfig(): Record<string, unknown> {
  // SD 1.5's scheduler_config.json values, under the EulerDiscreteScheduler class name
  return {
    _class_name: 'EulerDiscreteScheduler',
    _diffusers_version: DIFFUSERS_VERSION,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    clip_sample: false,
    num_train_timesteps: 1000,
    prediction_type: 'epsilon',
    set_alpha_to_one: false,
    skip_prk_steps: true,
    steps_offset: 1,
    timestep_spacing: 'leading',
    trained_betas: null,
  };
}

/** model_index.json as diffusers writes it; the bench's own set uses it too. */
export function modelIndex(spec: Pick<SetSpec, 'pipeline' | 'description' | 'safetyChecker'>): Record<string, unknown> {
  return {
    _class_name: spec.pipeline,
    _diffusers_version: DIFFUSERS_VERSION,
    _tiny_model_set: spec.description,
    feature_extractor: spec.safetyChecker ? ['transformers', 'CLIPImageProcessor'] : [null, null],
    requires_safety_checker: spec.safetyChecker,
    safety_checker: spec.safetyChecker ? ['stable_diffusion', 'StableDiffusionSafetyChecker'] : [null, null],
    scheduler: ['diffusers', 'EulerDiscreteScheduler'],
    text_encoder: ['transformers', 'CLIPTextModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'UNet2DConditionModel'],
    vae_decoder: ['diffusers', 'AutoencoderKL'],
    vae_encoder: ['diffusers', 'AutoencoderKL'],
  };
}

/** Builds each distinct graph once: sets share the text encoder, VAE and UNet bytes where they can. */
class ModelCache {
  private readonly cache = new Map<string, Uint8Array>();
  readonly opTypes = new Map<string, string[]>();

  get(key: string, build: () => GraphBuilder): Uint8Array {
    let bytes = this.cache.get(key);
    if (!bytes) {
      const graph = build();
      bytes = graph.encode();
      this.cache.set(key, bytes);
      this.opTypes.set(key, graph.opTypes());
    }
    return bytes;
  }
}

export class TinyModelFactory {
  readonly tokenizer: TinyTokenizerFiles = buildTinyTokenizer();
  readonly models = new ModelCache();

  setFiles(name: SetName): SetFile[] {
    const spec = SPECS[name];
    const tok = this.tokenizer;
    const textSpec: TextEncoderSpec = { vocabSize: tok.vocabSize, endId: tok.endId, io: spec.io };
    const unetSpec = { inChannels: spec.unetInChannels, io: spec.io };
    const m = this.models;
    const files: SetFile[] = [
      { path: 'model_index.json', bytes: json(modelIndex(spec)) },
      { path: 'scheduler/scheduler_config.json', bytes: json(schedulerConfig()) },
      { path: 'tokenizer/vocab.json', bytes: json(tok.vocab) },
      { path: 'tokenizer/merges.txt', bytes: new TextEncoder().encode(mergesText(tok.merges)) },
      { path: 'tokenizer/tokenizer_config.json', bytes: json(tokenizerConfig()) },
      { path: 'tokenizer/special_tokens_map.json', bytes: json(specialTokensMap()) },
      { path: 'text_encoder/model.onnx', bytes: m.get(`text_encoder/${spec.io}`, () => buildTextEncoder(textSpec)) },
      { path: 'text_encoder/config.json', bytes: json(textEncoderConfig(textSpec, tok.startId)) },
      {
        path: 'unet/model.onnx',
        bytes:
          spec.unet === 'analytic'
            ? m.get('unet/analytic', buildAnalyticUNet)
            : m.get(`unet/${spec.unetInChannels}/${spec.io}`, () => buildUNet(unetSpec)),
      },
      { path: 'unet/config.json', bytes: json(unetConfig(unetSpec)) },
      {
        path: 'vae_encoder/model.onnx',
        bytes: spec.vae === 'analytic' ? m.get('vae_encoder/analytic', buildAnalyticVaeEncoder) : m.get(`vae_encoder/${spec.io}`, () => buildVaeEncoder(spec.io)),
      },
      { path: 'vae_encoder/config.json', bytes: json(vaeConfig()) },
      {
        path: 'vae_decoder/model.onnx',
        bytes: spec.vae === 'analytic' ? m.get('vae_decoder/analytic', buildAnalyticVaeDecoder) : m.get(`vae_decoder/${spec.io}`, () => buildVaeDecoder(spec.io)),
      },
      { path: 'vae_decoder/config.json', bytes: json(vaeConfig()) },
    ];
    if (spec.safetyChecker) {
      files.push(
        { path: 'safety_checker/model.onnx', bytes: m.get('safety_checker', buildSafetyChecker) },
        { path: 'safety_checker/config.json', bytes: json(safetyCheckerConfig()) },
        { path: 'feature_extractor/preprocessor_config.json', bytes: json(featureExtractorConfig()) },
      );
    }
    return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}
