/**
 * Converts the trained ESRGAN-slim super-resolution networks of `@upscalerjs/esrgan-slim` (MIT,
 * Kevin Scott) from TensorFlow.js layers format (model.json + weight shards) into ONNX graphs the
 * engine's upscaler runs: `image` RGB [1, 3, H, W] in [0, 1] in, `upscaled` RGB [1, 3, sH, sW] in
 * [0, 1] out.
 *
 * The package's x2/x3/x4 networks are all "rdn" (a slim residual dense network: convs, ReLU,
 * channel concatenations, residual adds, a nearest UpSampling2D and a last conv), saved by Keras as
 * a Functional model with only built-in layers. The converter walks that Functional config and
 * translates each layer it knows; any other layer class (e.g. the custom PixelShuffle/MultiplyBeta
 * layers the package's non-rdn models register) is an error, not a guess.
 *
 * The range the network works in is read from the package's own model definition
 * (`inputRange`/`outputRange`: [0, 255] for rdn) and folded into the graph as a Mul at each end, so
 * that every caller feeds and gets [0, 1]; the output is clamped to [0, 1] inside the graph, as
 * upscalerjs clips to its outputRange.
 *
 *   npx tsx tools/esrgan.ts [outDir]    (default public/models)
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphBuilder } from './onnx/graph.ts';
import { resizeNearestScale } from './onnx/layers.ts';
import { DType } from './onnx/proto.ts';

export const ESRGAN_MODEL_ID = 'esrgan';
export const ESRGAN_PACKAGE = '@upscalerjs/esrgan-slim';
/** The scales converted; the package's x8 is left out (upscalerjs itself marks it Node-only). */
export const ESRGAN_SCALES = [2, 3, 4] as const;
export type EsrganScale = (typeof ESRGAN_SCALES)[number];

export function esrganFileName(scale: number): string {
  return `x${scale}.onnx`;
}

/** What upscalerjs's model definition (the package's main export per scale) says about a network. */
export interface EsrganDefinition {
  scale: number;
  modelType: string;
  inputRange: [number, number];
  outputRange: [number, number];
  meta: { architecture: string };
  _internals: { path: string; name: string; version: string };
}

const require = createRequire(import.meta.url);

/** The package's definition for `scale`, loaded through its CommonJS entry (its ESM build has extension-less imports Node cannot load). */
export function esrganDefinition(scale: number): EsrganDefinition {
  return require(`${ESRGAN_PACKAGE}/${scale}x`) as EsrganDefinition;
}

/** The package's root folder, found from its resolved entry (its exports map hides package.json). */
export function esrganPackageDir(): string {
  let dir = path.dirname(require.resolve(`${ESRGAN_PACKAGE}/${ESRGAN_SCALES[0]}x`));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (require(manifest) as { name?: string }).name === ESRGAN_PACKAGE) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`${ESRGAN_PACKAGE}: package root not found`);
    dir = up;
  }
}

// --- TensorFlow.js layers format -----------------------------------------------------------------

/** One entry of a Keras Functional config's inbound node: [layer name, node index, tensor index, kwargs]. */
type InboundRef = [string, number, number, Record<string, unknown>?];

export interface KerasLayer {
  class_name: string;
  name: string;
  config: Record<string, unknown>;
  inbound_nodes: InboundRef[][];
}

export interface LayersModelJson {
  format?: string;
  modelTopology: {
    model_config: {
      class_name: string;
      config: { name: string; layers: KerasLayer[]; input_layers: [string, number, number][]; output_layers: [string, number, number][] };
    };
  };
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string; quantization?: unknown }[] }[];
}

export interface LayersModel {
  json: LayersModelJson;
  /** Every weight shard's bytes, concatenated in manifest order (what tf.io.fromMemory takes). */
  weightData: Uint8Array;
  weights: Map<string, { dims: number[]; data: Float32Array }>;
}

/** Reads model.json and its shards from `dir`; float32 unquantized weights only (all the package ships). */
export async function readLayersModel(dir: string): Promise<LayersModel> {
  const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')) as LayersModelJson;
  if (json.format !== undefined && json.format !== 'layers-model') throw new Error(`${dir}: format ${json.format} is not a layers model`);
  const groups: Uint8Array[] = [];
  const weights = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const group of json.weightsManifest) {
    const shards = await Promise.all(group.paths.map((p) => readFile(path.join(dir, p))));
    const bytes = new Uint8Array(shards.reduce((n, s) => n + s.byteLength, 0));
    let at = 0;
    for (const s of shards) {
      bytes.set(s, at);
      at += s.byteLength;
    }
    groups.push(bytes);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    for (const w of group.weights) {
      if (w.dtype !== 'float32' || w.quantization !== undefined) throw new Error(`${w.name}: ${w.dtype}${w.quantization ? ' (quantized)' : ''} weights are not supported`);
      const count = w.shape.reduce((a, b) => a * b, 1);
      if (offset + 4 * count > bytes.byteLength) throw new Error(`${w.name}: the shards end before this weight`);
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getFloat32(offset + 4 * i, true);
      offset += 4 * count;
      weights.set(w.name, { dims: w.shape, data });
    }
    if (offset !== bytes.byteLength) throw new Error(`${dir}: ${bytes.byteLength - offset} bytes of the shards belong to no weight`);
  }
  const weightData = new Uint8Array(groups.reduce((n, g) => n + g.byteLength, 0));
  let at = 0;
  for (const g of groups) {
    weightData.set(g, at);
    at += g.byteLength;
  }
  return { json, weightData, weights };
}

// --- graph --------------------------------------------------------------------------------------

function pair(v: unknown, what: string): [number, number] {
  const a = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(a) || a.length !== 2 || !a.every((n) => Number.isInteger(n))) throw new Error(`${what}: expected two integers, got ${JSON.stringify(v)}`);
  return [a[0] as number, a[1] as number];
}

/** TF kernel [kh, kw, in, out] -> ONNX Conv weight [out, in, kh, kw]. */
function kernelToOnnx(k: { dims: number[]; data: Float32Array }): { dims: number[]; data: Float32Array } {
  const [kh, kw, cin, cout] = k.dims;
  const out = new Float32Array(k.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = k.data[((y * kw + x) * cin + i) * cout + o];
  return { dims: [cout, cin, kh, kw], data: out };
}

/**
 * The ONNX graph of a Keras Functional layers model, NHWC turned NCHW: the input is scaled from
 * [0, 1] to `inputRange` and the output from `outputRange` back to [0, 1], then clamped.
 */
export function buildEsrgan(model: LayersModel, definition: EsrganDefinition): GraphBuilder {
  const config = model.json.modelTopology.model_config;
  if (config.class_name !== 'Functional' && config.class_name !== 'Model') throw new Error(`model class ${config.class_name} is not supported`);
  const { layers, input_layers: inputLayers, output_layers: outputLayers } = config.config;
  if (inputLayers.length !== 1 || outputLayers.length !== 1) throw new Error('one input and one output layer expected');
  const [inLo, inHi] = definition.inputRange;
  const [outLo, outHi] = definition.outputRange;
  if (inLo !== 0 || outLo !== 0) throw new Error(`ranges [${definition.inputRange}] -> [${definition.outputRange}]: only ranges from 0 are supported`);

  const b = new GraphBuilder(`esrgan_x${definition.scale}`, 0);
  const used = new Set<string>();
  const param = (name: string, t?: { dims: number[]; data: Float32Array }): string => {
    const found = t ?? model.weights.get(name);
    if (!found) throw new Error(`the model has no weight ${name}`);
    used.add(name);
    return b.tensor(name.replace(/\//g, '.'), found.dims, found.data);
  };
  const values = new Map<string, string>();
  const inputsOf = (layer: KerasLayer): string[] => {
    if (layer.inbound_nodes.length !== 1) throw new Error(`${layer.name}: a layer called ${layer.inbound_nodes.length} times is not supported`);
    return layer.inbound_nodes[0].map(([name, node, index]) => {
      const v = values.get(name);
      if (v === undefined || node !== 0 || index !== 0) throw new Error(`${layer.name}: input ${name}[${node}][${index}] is not available`);
      return v;
    });
  };
  const activation = (name: string, x: string, kind: unknown): string => {
    if (kind === 'linear') return x;
    if (kind === 'relu') return b.op('Relu', [x]);
    throw new Error(`${name}: activation ${String(kind)} is not supported`);
  };
  const channelAxis = (name: string, axis: unknown): number => {
    // NHWC's channel axis (3 or -1) is NCHW's 1; the converter never concatenates spatially
    if (axis === 3 || axis === -1) return 1;
    throw new Error(`${name}: concatenation on axis ${String(axis)} is not supported`);
  };

  for (const layer of layers) {
    const c = layer.config;
    let out: string;
    switch (layer.class_name) {
      case 'InputLayer': {
        const shape = c.batch_input_shape as (number | null)[];
        if (!Array.isArray(shape) || shape.length !== 4 || shape[3] !== 3) throw new Error(`${layer.name}: an RGB NHWC input is expected, got [${String(shape)}]`);
        const image = b.input('image', DType.FLOAT, [1, 3, 'height', 'width']);
        // the network was trained on pixel values in inputRange; callers speak [0, 1]
        out = inHi === 1 ? image : b.op('Mul', [image, b.scalar(inHi)]);
        break;
      }
      case 'Conv2D': {
        const [x] = inputsOf(layer);
        if (c.data_format !== 'channels_last') throw new Error(`${layer.name}: data format ${String(c.data_format)}`);
        const [kh, kw] = pair(c.kernel_size, `${layer.name}.kernel_size`);
        const strides = pair(c.strides, `${layer.name}.strides`);
        const dilations = pair(c.dilation_rate, `${layer.name}.dilation_rate`);
        if ((c.groups ?? 1) !== 1) throw new Error(`${layer.name}: grouped convolution is not supported`);
        let pads = [0, 0, 0, 0];
        if (c.padding === 'same') {
          // TF's "same" for stride 1 pads (k-1)·d in total, the odd pixel at the end
          if (strides[0] !== 1 || strides[1] !== 1) throw new Error(`${layer.name}: "same" padding with stride ${strides} depends on the input size`);
          const th = (kh - 1) * dilations[0];
          const tw = (kw - 1) * dilations[1];
          pads = [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
        } else if (c.padding !== 'valid') {
          throw new Error(`${layer.name}: padding ${String(c.padding)} is not supported`);
        }
        const kernel = model.weights.get(`${layer.name}/kernel`);
        if (!kernel) throw new Error(`the model has no weight ${layer.name}/kernel`);
        const inputs = [x, param(`${layer.name}/kernel`, kernelToOnnx(kernel))];
        if (c.use_bias === true) inputs.push(param(`${layer.name}/bias`));
        const y = b.op('Conv', inputs, { kernel_shape: [kh, kw], strides, pads, dilations, group: 1 });
        out = activation(layer.name, y, c.activation);
        break;
      }
      case 'Activation':
        out = activation(layer.name, inputsOf(layer)[0], c.activation);
        break;
      case 'Add': {
        const xs = inputsOf(layer);
        out = xs.slice(1).reduce((acc, x) => b.op('Add', [acc, x]), xs[0]);
        break;
      }
      case 'Concatenate':
        out = b.op('Concat', inputsOf(layer), { axis: channelAxis(layer.name, c.axis) });
        break;
      case 'UpSampling2D': {
        const [x] = inputsOf(layer);
        const [sh, sw] = pair(c.size, `${layer.name}.size`);
        // Keras' nearest upsampling repeats each pixel, which is Resize nearest with floor of the asymmetric source coordinate
        if (c.interpolation !== 'nearest' || sh !== sw) throw new Error(`${layer.name}: only square nearest upsampling is supported`);
        out = resizeNearestScale(b, x, sh);
        break;
      }
      default:
        throw new Error(`${layer.name}: layer class ${layer.class_name} is not supported`);
    }
    values.set(layer.name, out);
  }

  const last = values.get(outputLayers[0][0]);
  if (last === undefined) throw new Error(`output layer ${outputLayers[0][0]} was not built`);
  const scaled = outHi === 1 ? last : b.op('Mul', [last, b.scalar(1 / outHi)]);
  b.output('upscaled', clamp01(b, scaled), DType.FLOAT, [1, 3, 'upscaled_height', 'upscaled_width']);
  const unused = [...model.weights.keys()].filter((k) => !used.has(k));
  if (unused.length > 0) throw new Error(`the model has weights no layer uses: ${unused.join(', ')}`);
  return b;
}

/** min(max(x, 0), 1) as relu(x) - relu(x - 1) (Clip is not in the WebGPU op list we keep to). */
function clamp01(b: GraphBuilder, x: string): string {
  return b.op('Sub', [b.op('Relu', [x]), b.op('Relu', [b.op('Sub', [x, b.scalar(1)])])]);
}

/** The package's definition and tfjs files for one scale, checked to be the architecture converted here. */
export async function loadEsrgan(scale: number, packageDir = esrganPackageDir()): Promise<{ definition: EsrganDefinition; model: LayersModel }> {
  const definition = esrganDefinition(scale);
  if (definition.scale !== scale || definition.modelType !== 'layers') throw new Error(`${ESRGAN_PACKAGE} x${scale}: unexpected definition (scale ${definition.scale}, ${definition.modelType})`);
  const model = await readLayersModel(path.dirname(path.join(packageDir, definition._internals.path)));
  return { definition, model };
}

/** The ONNX bytes of the x`scale` network. */
export async function convertEsrgan(scale: number, packageDir = esrganPackageDir()): Promise<Uint8Array> {
  const { definition, model } = await loadEsrgan(scale, packageDir);
  const { name, version } = definition._internals;
  return buildEsrgan(model, definition).encode(
    `ESRGAN-slim x${scale} (${definition.meta.architecture}) from ${name} ${version} by Kevin Scott (MIT), https://github.com/thekevinscott/upscaler`,
  );
}

export interface EsrganManifestEntry {
  files: { path: string; size: number; sha256: string }[];
}

/**
 * Writes <outDir>/esrgan/x2.onnx, x3.onnx, x4.onnx and adds "esrgan" to <outDir>/models.json.
 * The package is a devDependency, so its absence is an install error, not a skip.
 */
export async function generateEsrgan(outDir: string, packageDir = esrganPackageDir()): Promise<EsrganManifestEntry> {
  const dir = path.join(outDir, ESRGAN_MODEL_ID);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const entry: EsrganManifestEntry = { files: [] };
  for (const scale of ESRGAN_SCALES) {
    const bytes = await convertEsrgan(scale, packageDir);
    const file = esrganFileName(scale);
    await writeFile(path.join(dir, file), bytes);
    entry.files.push({ path: file, size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  const manifestPath = path.join(outDir, 'models.json');
  const manifest = existsSync(manifestPath) ? (JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>) : {};
  manifest[ESRGAN_MODEL_ID] = entry;
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return entry;
}

function isMain(): boolean {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
}

if (isMain()) {
  const entry = await generateEsrgan(path.resolve(process.argv[2] ?? 'public/models'));
  const bytes = entry.files.reduce((n, f) => n + f.size, 0);
  console.log(`esrgan             ${entry.files.length} files ${(bytes / 1024).toFixed(1).padStart(8)} KiB`);
}
