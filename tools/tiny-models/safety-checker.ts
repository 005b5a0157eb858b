/**
 * A tiny StableDiffusionSafetyChecker with the real export's I/O (diffusers' forward_onnx):
 * clip_input [B,3,224,224] and images [B,H,W,3] → out_images (flagged images blacked out, as
 * forward_onnx does) and has_nsfw_concepts bool [B]. Analytic rule so tests can trigger it:
 * flagged when mean(clip_input) over C,H,W > 1.5, i.e. a near-white image after CLIP normalisation.
 */
import { GraphBuilder } from '../onnx/graph.ts';
import { DType } from '../onnx/proto.ts';
import { SEED } from './common.ts';

export const NSFW_MEAN_THRESHOLD = 1.5;

export function buildSafetyChecker(): GraphBuilder {
  const b = new GraphBuilder('safety_checker', SEED);
  const clip = b.input('clip_input', DType.FLOAT, ['batch', 3, 224, 224]);
  const images = b.input('images', DType.FLOAT, ['batch', 'height', 'width', 3]);
  const excess = b.op('Sub', [b.op('ReduceMean', [clip], { axes: [1, 2, 3], keepdims: 0 }), b.scalar(NSFW_MEAN_THRESHOLD)]);
  // d + |d| is nonzero exactly when d > 0 (Greater is not in our op list); a float32 mean near 1.5
  // is either 1.5 or an ulp (1.2e-7) away, so d·d cannot underflow to zero.
  const positive = b.op('Add', [excess, b.op('Sqrt', [b.op('Mul', [excess, excess])])]);
  const flagged = b.op('Cast', [positive], { to: DType.BOOL });
  const keep = b.op('Unsqueeze', [b.op('Where', [flagged, b.scalar(0), b.scalar(1)]), b.int64([1, 2, 3])]);
  b.output('out_images', b.op('Mul', [images, keep]), DType.FLOAT, ['batch', 'height', 'width', 3]);
  b.output('has_nsfw_concepts', flagged, DType.BOOL, ['batch']);
  return b;
}

export function safetyCheckerConfig(): Record<string, unknown> {
  return {
    _name_or_path: 'sd-browser/tiny-sd',
    architectures: ['StableDiffusionSafetyChecker'],
    model_type: 'clip',
    projection_dim: 32,
    tiny_rule: `has_nsfw_concepts = mean(clip_input over C,H,W) > ${NSFW_MEAN_THRESHOLD}; flagged out_images are zeros`,
  };
}

/** CLIPImageProcessor settings of SD's feature_extractor (the safety checker's input). */
export function featureExtractorConfig(): Record<string, unknown> {
  return {
    crop_size: { height: 224, width: 224 },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_processor_type: 'CLIPImageProcessor',
    image_std: [0.26862954, 0.26130258, 0.27577711],
    resample: 3,
    rescale_factor: 0.00392156862745098,
    size: { shortest_edge: 224 },
  };
}
