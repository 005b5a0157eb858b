/**
 * Real Stable Diffusion exports on the Hugging Face hub that the engine runs. Files are named by
 * the engine's canonical paths (unet/model.onnx, …) with the URL they really live at, so
 * repositories that name or place files differently, or keep their tokenizer and scheduler in a
 * companion repository, still load. Each entry states what its graphs allow (modes, a fixed size),
 * so a request they cannot serve is refused before a byte is downloaded; tests check the
 * declarations against replicas of the real graphs (tools/tiny-models/replicas.ts).
 *
 * Sizes are the repositories' own (model cards, loaders), rounded; the exact size and sha256 of
 * each file come from the hub's X-Linked-Size / X-Linked-Etag headers at download time.
 */
import type { CatalogueEntry, ModelDefaults, ModelFeatures } from './catalogue.ts';
import { NO_VAE_ENCODER, type ModelLimits } from './model-descriptor.ts';

/** The Hugging Face hub; a mirror with the same paths (such as hf-mirror.com) can stand in for it. */
export const HUB = 'https://huggingface.co';

interface RealModelSpec {
  id: string;
  name: string;
  description: string;
  repo: string;
  dtype: 'fp16' | 'fp32' | 'int8' | 'int4';
  license: string;
  family: 'stable-diffusion' | 'stable-diffusion-xl';
  features: ModelFeatures;
  limits: ModelLimits;
  defaults: ModelDefaults;
  /** canonical path -> [repo, path in that repo, approximate MB] */
  files: Record<string, [string, string, number]>;
}

const textOnly = (fixedSize: ModelLimits['fixedSize'] = null): ModelLimits => ({
  modes: { text2img: true, img2img: NO_VAE_ENCODER, inpaint: NO_VAE_ENCODER },
  fixedSize,
});

const SD_TURBO = 'schmuell/sd-turbo-ort-web';
const SD_TURBO_CONFIGS = 'stabilityai/sd-turbo';
const SD15_WEBNN = 'microsoft/stable-diffusion-v1.5-webnn';
const SD15_CONFIGS = 'stable-diffusion-v1-5/stable-diffusion-v1-5';
const SD_TURBO_WEBNN = 'microsoft/sd-turbo-webnn';
const LIGHTNING_3SHARD = 'Cyronius/sdxl-lightning-4step-onnx-web-fp16-3shard';
const LIGHTNING_INT4 = 'd0gr/sdxl-lightning-onnx-webgpu-int4';
const LIGHTNING_INT4_COMPANION = 'd0gr/sdxl-lightning-onnx-webgpu';
const SDXL_CONFIGS = 'stabilityai/stable-diffusion-xl-base-1.0';

const SDXL_LICENSE = 'CreativeML Open RAIL++-M (SDXL 1.0 base and SDXL-Lightning)';
const SD_TURBO_LICENSE = 'Stability AI Non-Commercial Research Community License';
const LIGHTNING_DEFAULTS: ModelDefaults = { steps: 4, guidanceScale: 0, scheduler: 'EulerDiscreteScheduler', width: 1024, height: 1024, strength: 0.5 };

/** The SDXL tokenizers (tokenizer.json + config, as the fast tokenizers ship them) and configs of `repo`. */
function sdxlConfigFiles(repo: string): RealModelSpec['files'] {
  return {
    'model_index.json': [repo, 'model_index.json', 0],
    ...sdxlTokenizerFiles(repo),
    'scheduler/scheduler_config.json': [repo, 'scheduler/scheduler_config.json', 0],
  };
}

function sdxlTokenizerFiles(repo: string): RealModelSpec['files'] {
  return {
    'tokenizer/tokenizer.json': [repo, 'tokenizer/tokenizer.json', 2],
    'tokenizer/tokenizer_config.json': [repo, 'tokenizer/tokenizer_config.json', 0],
    'tokenizer_2/tokenizer.json': [repo, 'tokenizer_2/tokenizer.json', 2],
    'tokenizer_2/tokenizer_config.json': [repo, 'tokenizer_2/tokenizer_config.json', 0],
  };
}

/** The two text encoders of the SDXL-Lightning ONNX exports (the same layout in both repositories), each a graph and its weights. */
function sdxlTextEncoderFiles(repo: string): RealModelSpec['files'] {
  return {
    'text_encoder/model.onnx': [repo, 'text_encoder/model.onnx', 1],
    'text_encoder/model.onnx_data': [repo, 'text_encoder/model.onnx_data', 245],
    'text_encoder_2/model.onnx': [repo, 'text_encoder_2/model.onnx', 2],
    'text_encoder_2/model.onnx_data': [repo, 'text_encoder_2/model.onnx_data', 1388],
  };
}

/** Their VAE decoder; its config comes from the diffusers SDXL repository, which the exports lack. */
function sdxlVaeDecoderFiles(repo: string): RealModelSpec['files'] {
  return {
    'vae_decoder/model.onnx': [repo, 'vae_decoder/model.onnx', 1],
    'vae_decoder/model.onnx_data': [repo, 'vae_decoder/model.onnx_data', 98],
    'vae_decoder/config.json': [SDXL_CONFIGS, 'vae/config.json', 0],
  };
}

const SPECS: RealModelSpec[] = [
  {
    id: 'sd-turbo',
    name: 'SD-Turbo (fp16, WebGPU)',
    description: 'Stability AI SD-Turbo as ONNX for onnxruntime-web: 1-4 steps, no guidance, 512x512',
    repo: SD_TURBO,
    dtype: 'fp16',
    license: SD_TURBO_LICENSE,
    family: 'stable-diffusion',
    features: { guidance: false, safetyChecker: false },
    limits: { modes: { text2img: true, img2img: true, inpaint: true }, fixedSize: null },
    defaults: { steps: 1, guidanceScale: 0, scheduler: 'EulerAncestralDiscreteScheduler', width: 512, height: 512, strength: 0.5 },
    files: {
      'unet/model.onnx': [SD_TURBO, 'unet/model.onnx', 1730],
      'text_encoder/model.onnx': [SD_TURBO, 'text_encoder/model.onnx', 681],
      'vae_decoder/model.onnx': [SD_TURBO, 'vae_decoder/model.onnx', 99],
      'vae_encoder/model.onnx': [SD_TURBO, 'vae_encoder/model.onnx', 68],
      // the export ships only graphs: tokenizer and scheduler come from Stability AI's own repository
      'tokenizer/vocab.json': [SD_TURBO_CONFIGS, 'tokenizer/vocab.json', 1],
      'tokenizer/merges.txt': [SD_TURBO_CONFIGS, 'tokenizer/merges.txt', 1],
      'tokenizer/tokenizer_config.json': [SD_TURBO_CONFIGS, 'tokenizer/tokenizer_config.json', 0],
      'scheduler/scheduler_config.json': [SD_TURBO_CONFIGS, 'scheduler/scheduler_config.json', 0],
      'vae_decoder/config.json': [SD_TURBO_CONFIGS, 'vae/config.json', 0],
    },
  },
  {
    id: 'sd-turbo-webnn',
    name: 'SD-Turbo for WebNN (fp16, fixed 512x512)',
    description: 'SD-Turbo exported by Microsoft for WebNN: static shapes, fp16 inputs and outputs, one step, text2img',
    repo: SD_TURBO_WEBNN,
    dtype: 'fp16',
    license: SD_TURBO_LICENSE,
    family: 'stable-diffusion',
    features: { guidance: false, safetyChecker: true },
    limits: textOnly({ width: 512, height: 512 }),
    defaults: { steps: 1, guidanceScale: 0, scheduler: 'EulerDiscreteScheduler', width: 512, height: 512, strength: 0.5 },
    files: {
      'text_encoder/model.onnx': [SD_TURBO_WEBNN, 'text_encoder/model_layernorm.onnx', 649],
      'unet/model.onnx': [SD_TURBO_WEBNN, 'unet/model_layernorm.onnx', 1610],
      'vae_decoder/model.onnx': [SD_TURBO_WEBNN, 'vae_decoder/model.onnx', 95],
      'safety_checker/model.onnx': [SD_TURBO_WEBNN, 'safety_checker/safety_checker_int32_reduceSum.onnx', 580],
      'tokenizer/tokenizer.json': [SD_TURBO_WEBNN, 'tokenizer/tokenizer.json', 2],
      'tokenizer/tokenizer_config.json': [SD_TURBO_WEBNN, 'tokenizer/tokenizer_config.json', 0],
      'scheduler/scheduler_config.json': [SD_TURBO_CONFIGS, 'scheduler/scheduler_config.json', 0],
      'vae_decoder/config.json': [SD_TURBO_CONFIGS, 'vae/config.json', 0],
      'feature_extractor/preprocessor_config.json': [SD15_CONFIGS, 'feature_extractor/preprocessor_config.json', 0],
    },
  },
  {
    id: 'sd-1.5-webnn',
    name: 'Stable Diffusion 1.5 (fp16, with safety checker)',
    description: 'SD 1.5 exported by Microsoft for WebNN/WebGPU: UNet fixed to batch 2 at 64x64 latents (512x512), text2img',
    repo: SD15_WEBNN,
    dtype: 'fp16',
    license: 'CreativeML Open RAIL-M',
    family: 'stable-diffusion',
    features: { guidance: true, safetyChecker: true },
    limits: textOnly({ width: 512, height: 512 }),
    defaults: { steps: 25, guidanceScale: 7.5, scheduler: 'EulerAncestralDiscreteScheduler', width: 512, height: 512, strength: 0.7 },
    files: {
      'unet/model.onnx': [SD15_WEBNN, 'sd-unet-v1.5-model-b2c4h64w64s77-float16-compute-and-inputs-layernorm.onnx', 1640],
      'text_encoder/model.onnx': [SD15_WEBNN, 'text-encoder.onnx', 235],
      'vae_decoder/model.onnx': [SD15_WEBNN, 'Stable-Diffusion-v1.5-vae-decoder-float16-fp32-instancenorm.onnx', 95],
      'safety_checker/model.onnx': [SD15_WEBNN, 'safety_checker_int32_reduceSum.onnx', 580],
      'tokenizer/vocab.json': [SD15_WEBNN, 'tokenizer/vocab.json', 1],
      'tokenizer/merges.txt': [SD15_WEBNN, 'tokenizer/merges.txt', 1],
      'tokenizer/tokenizer_config.json': [SD15_WEBNN, 'tokenizer/tokenizer_config.json', 0],
      'scheduler/scheduler_config.json': [SD15_CONFIGS, 'scheduler/scheduler_config.json', 0],
      'vae_decoder/config.json': [SD15_CONFIGS, 'vae/config.json', 0],
      'feature_extractor/preprocessor_config.json': [SD15_CONFIGS, 'feature_extractor/preprocessor_config.json', 0],
    },
  },
  {
    id: 'sdxl-lightning-fp16',
    name: 'SDXL-Lightning 4-step (fp16, 3 shards)',
    description: 'SDXL-Lightning 4-step as ONNX for onnxruntime-web: fp16 weights, fp32 I/O, the UNet in three shards below 2 GB; 1024x1024, text2img',
    repo: LIGHTNING_3SHARD,
    dtype: 'fp16',
    license: SDXL_LICENSE,
    family: 'stable-diffusion-xl',
    features: { guidance: false, safetyChecker: false },
    limits: textOnly(),
    defaults: LIGHTNING_DEFAULTS,
    files: {
      ...sdxlTextEncoderFiles(LIGHTNING_3SHARD),
      'unet/model.onnx': [LIGHTNING_3SHARD, 'unet/model.onnx', 6],
      'unet/model.onnx_data': [LIGHTNING_3SHARD, 'unet/model.onnx_data', 2000],
      'unet/model.onnx_data_1': [LIGHTNING_3SHARD, 'unet/model.onnx_data_1', 2000],
      'unet/model.onnx_data_2': [LIGHTNING_3SHARD, 'unet/model.onnx_data_2', 1130],
      ...sdxlVaeDecoderFiles(LIGHTNING_3SHARD),
      ...sdxlConfigFiles(LIGHTNING_3SHARD),
    },
  },
  {
    id: 'sdxl-lightning-int4',
    name: 'SDXL-Lightning 4-step (4-bit UNet)',
    description: 'SDXL-Lightning with a 4-bit weight-only (MatMulNBits) UNet: 3.6 GB in all; its encoders, VAE and tokenizers come from the fp16 companion repository; 1024x1024, text2img',
    repo: LIGHTNING_INT4,
    dtype: 'int4',
    license: SDXL_LICENSE,
    family: 'stable-diffusion-xl',
    features: { guidance: false, safetyChecker: false },
    limits: textOnly(),
    defaults: LIGHTNING_DEFAULTS,
    files: {
      'unet/model.onnx': [LIGHTNING_INT4, 'unet/model_q4.onnx', 1],
      'unet/model_q4.onnx_data': [LIGHTNING_INT4, 'unet/model_q4.onnx_data', 1860],
      ...sdxlTextEncoderFiles(LIGHTNING_INT4_COMPANION),
      ...sdxlVaeDecoderFiles(LIGHTNING_INT4_COMPANION),
      ...sdxlTokenizerFiles(LIGHTNING_INT4_COMPANION),
      // the int4 repository holds the UNet alone; the pipeline manifest and Lightning's trailing Euler come with the 3-shard export's
      'model_index.json': [LIGHTNING_3SHARD, 'model_index.json', 0],
      'scheduler/scheduler_config.json': [LIGHTNING_3SHARD, 'scheduler/scheduler_config.json', 0],
    },
  },
];

/** The catalogue's real models, their files at `hub` (the Hugging Face hub, or a mirror of it). */
export function realModels(hub: string = HUB): CatalogueEntry[] {
  const base = hub.trim().replace(/\/+$/, '');
  const resolve = (repo: string, path: string) => `${base}/${repo}/resolve/main/${path}`;
  return SPECS.map((spec) => ({
    id: spec.id,
    name: spec.name,
    description: spec.description,
    repo: spec.repo,
    dtype: spec.dtype,
    license: spec.license,
    family: spec.family,
    features: spec.features,
    limits: spec.limits,
    defaults: spec.defaults,
    approxBytes: Object.values(spec.files).reduce((n, [, , mb]) => n + mb * 1e6, 0),
    source: {
      id: spec.id,
      baseUrl: `${base}/${spec.repo}/resolve/main/`,
      files: Object.entries(spec.files).map(([path, [repo, real]]) => ({ path, url: resolve(repo, real) })),
    },
  }));
}

export const REAL_MODELS: CatalogueEntry[] = realModels();
