/**
 * Real Stable Diffusion exports on the Hugging Face hub that the engine's layout fits. Files are
 * named by the engine's canonical paths (unet/model.onnx, …) with the URL they really live at, so
 * repositories that name or place files differently, or lack a tokenizer or scheduler config,
 * still load. Sizes are approximate (for display and the quota check); the exact size and sha256
 * come from the hub's X-Linked-Size / X-Linked-Etag headers at download time.
 */
import type { CatalogueEntry, ModelFeatures, ModelDefaults } from './catalogue.ts';

const HUB = 'https://huggingface.co';
const resolve = (repo: string, path: string) => `${HUB}/${repo}/resolve/main/${path}`;

interface RealModelSpec {
  id: string;
  name: string;
  description: string;
  repo: string;
  dtype: 'fp16' | 'fp32' | 'int8';
  license: string;
  features: ModelFeatures;
  defaults: ModelDefaults;
  /** canonical path -> [repo, path in that repo, approximate MB] */
  files: Record<string, [string, string, number]>;
}

const SD_TURBO = 'schmuell/sd-turbo-ort-web';
const SD_TURBO_CONFIGS = 'stabilityai/sd-turbo';
const SD15_WEBNN = 'microsoft/stable-diffusion-v1.5-webnn';
const SD15_CONFIGS = 'stable-diffusion-v1-5/stable-diffusion-v1-5';

const SPECS: RealModelSpec[] = [
  {
    id: 'sd-turbo',
    name: 'SD-Turbo (fp16, WebGPU)',
    description: 'Stability AI SD-Turbo as ONNX for onnxruntime-web: 1-4 steps, no guidance, 512x512',
    repo: SD_TURBO,
    dtype: 'fp16',
    license: 'Stability AI Non-Commercial Research Community License',
    features: { text2img: true, img2img: true, inpaint: true, guidance: false, safetyChecker: false },
    defaults: { steps: 1, guidanceScale: 0, scheduler: 'EulerAncestralDiscreteScheduler', width: 512, height: 512, strength: 0.5 },
    files: {
      'unet/model.onnx': [SD_TURBO, 'unet/model.onnx', 1730],
      'text_encoder/model.onnx': [SD_TURBO, 'text_encoder/model.onnx', 681],
      'vae_decoder/model.onnx': [SD_TURBO, 'vae_decoder/model.onnx', 99],
      'vae_encoder/model.onnx': [SD_TURBO, 'vae_encoder/model.onnx', 68],
      'tokenizer/vocab.json': [SD_TURBO_CONFIGS, 'tokenizer/vocab.json', 1],
      'tokenizer/merges.txt': [SD_TURBO_CONFIGS, 'tokenizer/merges.txt', 1],
      'tokenizer/tokenizer_config.json': [SD_TURBO_CONFIGS, 'tokenizer/tokenizer_config.json', 0],
      'scheduler/scheduler_config.json': [SD_TURBO_CONFIGS, 'scheduler/scheduler_config.json', 0],
      'vae_decoder/config.json': [SD_TURBO_CONFIGS, 'vae/config.json', 0],
    },
  },
  {
    id: 'sd-1.5-webnn',
    name: 'Stable Diffusion 1.5 (fp16, with safety checker)',
    description: 'SD 1.5 exported by Microsoft for WebNN/WebGPU: UNet fixed to batch 2 at 64x64 latents (512x512), text2img',
    repo: SD15_WEBNN,
    dtype: 'fp16',
    license: 'CreativeML Open RAIL-M',
    // The repository has no VAE encoder, so img2img and inpaint need another model.
    features: { text2img: true, img2img: false, inpaint: false, guidance: true, safetyChecker: true },
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
];

export const REAL_MODELS: CatalogueEntry[] = SPECS.map((spec) => ({
  id: spec.id,
  name: spec.name,
  description: spec.description,
  repo: spec.repo,
  dtype: spec.dtype,
  license: spec.license,
  features: spec.features,
  defaults: spec.defaults,
  approxBytes: Object.values(spec.files).reduce((n, [, , mb]) => n + mb * 1e6, 0),
  source: {
    id: spec.id,
    baseUrl: `${HUB}/${spec.repo}/resolve/main/`,
    files: Object.entries(spec.files).map(([path, [repo, real]]) => ({ path, url: resolve(repo, real) })),
  },
}));

/** The files a repository in the standard ORT-web layout has; optional ones may be missing. */
export const STANDARD_LAYOUT: { path: string; optional?: boolean }[] = [
  { path: 'text_encoder/model.onnx' },
  { path: 'text_encoder/model.onnx_data', optional: true },
  { path: 'unet/model.onnx' },
  { path: 'unet/model.onnx_data', optional: true },
  { path: 'vae_decoder/model.onnx' },
  { path: 'vae_encoder/model.onnx', optional: true },
  { path: 'safety_checker/model.onnx', optional: true },
  { path: 'feature_extractor/preprocessor_config.json', optional: true },
  { path: 'tokenizer/vocab.json' },
  { path: 'tokenizer/merges.txt' },
  { path: 'tokenizer/tokenizer_config.json', optional: true },
  { path: 'scheduler/scheduler_config.json' },
  { path: 'vae_decoder/config.json', optional: true },
  { path: 'vae_encoder/config.json', optional: true },
];

/** A user's own model: any repository (or folder) with the standard layout, by its base URL. */
export function customModel(baseUrl: string, name?: string): CatalogueEntry {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const id = `custom:${base}`;
  return {
    id,
    name: name ?? base.replace(/^https?:\/\//, '').replace(/\/resolve\/main\/$/, ''),
    description: `Added by URL: ${base}`,
    features: { text2img: true, img2img: true, inpaint: true, guidance: true, safetyChecker: false },
    defaults: { steps: 25, guidanceScale: 7.5, width: 512, height: 512, strength: 0.7 },
    source: { id, baseUrl: base, files: STANDARD_LAYOUT.map(({ path }) => ({ path })) },
  };
}
