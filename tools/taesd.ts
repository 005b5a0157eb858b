/**
 * Converts madebyollin's TAESD decoder (safetensors, SD 1.x/2.x latent space) into an ONNX graph
 * the app's previewer runs: raw UNet-space latents [B, 4, h, w] in, RGB [B, 3, 8h, 8w] in [0, 1] out.
 *
 * The architecture (an nn.Sequential whose indices are the tensor names): 0 Clamp (tanh(x/3)·3),
 * 1 conv 4→64, 2 ReLU, then three times [3 Blocks, Upsample ×2 nearest, bias-free conv], one
 * Block, and 19 conv 64→3. A Block is conv-ReLU-conv-ReLU-conv plus the identity skip, then ReLU.
 * All convs are 3×3 with padding 1. The output clamp to [0, 1] is part of the graph, so every
 * caller sees the same range.
 *
 *   npx tsx tools/taesd.ts [outDir]    (default public/models; needs the fixture)
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphBuilder } from './onnx/graph.ts';
import { resizeNearestScale } from './onnx/layers.ts';
import { DType } from './onnx/proto.ts';

export const TAESD_MODEL_ID = 'taesd';
export const TAESD_DECODER_FILE = 'decoder.onnx';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const TAESD_FIXTURE = path.resolve(HERE, '../../shared/fixtures/taesd/taesd_decoder.safetensors');

/** Tensors of a safetensors file as float32 (F32, F16 and BF16 are read). */
export function readSafetensors(bytes: Uint8Array): Map<string, { dims: number[]; data: Float32Array }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLength;
  const out = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [start, end] = t.data_offsets;
    const count = t.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    const at = base + start;
    if (t.dtype === 'BF16') {
      // bf16 is the top half of a float32
      const f32 = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < count; i++) {
        f32.setUint32(0, view.getUint16(at + 2 * i, true) << 16, true);
        data[i] = f32.getFloat32(0, true);
      }
    } else if (t.dtype === 'F32') {
      for (let i = 0; i < count; i++) data[i] = view.getFloat32(at + 4 * i, true);
    } else if (t.dtype === 'F16') {
      for (let i = 0; i < count; i++) data[i] = halfToFloat(view.getUint16(at + 2 * i, true));
    } else {
      throw new Error(`${name}: dtype ${t.dtype} is not supported`);
    }
    if (end - start !== count * (t.dtype === 'F32' ? 4 : 2)) throw new Error(`${name}: ${end - start} bytes for shape [${t.shape}]`);
    out.set(name, { dims: t.shape, data });
  }
  return out;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

/** The decoder graph from the safetensors' tensors (names as madebyollin's nn.Sequential indices). */
export function buildTaesdDecoder(weights: Map<string, { dims: number[]; data: Float32Array }>): GraphBuilder {
  const b = new GraphBuilder('taesd_decoder', 0);
  const used = new Set<string>();
  const param = (name: string): string => {
    const t = weights.get(name);
    if (!t) throw new Error(`the TAESD decoder has no tensor ${name}`);
    used.add(name);
    return b.tensor(name, t.dims, t.data);
  };
  const conv = (prefix: string, x: string): string => {
    const inputs = [x, param(`${prefix}.weight`)];
    if (weights.has(`${prefix}.bias`)) inputs.push(param(`${prefix}.bias`));
    return b.op('Conv', inputs, { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 });
  };
  const relu = (x: string) => b.op('Relu', [x]);
  const block = (index: number, x: string): string => {
    const p = `${index}.conv`;
    const h = conv(`${p}.4`, relu(conv(`${p}.2`, relu(conv(`${p}.0`, x)))));
    return relu(b.op('Add', [h, x]));
  };

  const latent = b.input('latent_sample', DType.FLOAT, ['batch', 4, 'latent_height', 'latent_width']);
  // Clamp(): a soft clamp of the latents to about ±3
  let h = b.op('Mul', [b.op('Tanh', [b.op('Div', [latent, b.scalar(3)])]), b.scalar(3)]);
  h = relu(conv('1', h));
  let index = 3;
  for (let stage = 0; stage < 3; stage++) {
    for (let i = 0; i < 3; i++) h = block(index++, h);
    h = conv(String(index + 1), resizeNearestScale(b, h, 2));
    index += 2;
  }
  h = block(index, h);
  h = conv(String(index + 1), h);
  // the decoder's output range, as TAESD's own users clamp it
  b.output('sample', clamp01(b, h), DType.FLOAT, ['batch', 3, 'height', 'width']);
  const unused = [...weights.keys()].filter((k) => !used.has(k));
  if (unused.length > 0) throw new Error(`the TAESD decoder has tensors this architecture does not use: ${unused.join(', ')}`);
  return b;
}

/** min(max(x, 0), 1) as relu(x) - relu(x - 1) (Clip is not in the WebGPU op list we keep to). */
function clamp01(b: GraphBuilder, x: string): string {
  return b.op('Sub', [b.op('Relu', [x]), b.op('Relu', [b.op('Sub', [x, b.scalar(1)])])]);
}

/** The ONNX bytes of the decoder converted from the safetensors file. */
export async function convertTaesdDecoder(safetensorsPath = TAESD_FIXTURE): Promise<Uint8Array> {
  const weights = readSafetensors(new Uint8Array(await readFile(safetensorsPath)));
  return buildTaesdDecoder(weights).encode('TAESD decoder by Ollin Boer Bohan (MIT), https://github.com/madebyollin/taesd');
}

export interface TaesdManifestEntry {
  files: { path: string; size: number; sha256: string }[];
}

/**
 * Writes <outDir>/taesd/decoder.onnx and adds "taesd" to <outDir>/models.json when the fixture
 * exists; otherwise removes a stale one, so the app falls back to the linear preview.
 */
export async function generateTaesd(outDir: string, safetensorsPath = TAESD_FIXTURE): Promise<TaesdManifestEntry | null> {
  const dir = path.join(outDir, TAESD_MODEL_ID);
  const manifestPath = path.join(outDir, 'models.json');
  const manifest = existsSync(manifestPath) ? (JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>) : {};
  await rm(dir, { recursive: true, force: true });
  delete manifest[TAESD_MODEL_ID];
  let entry: TaesdManifestEntry | null = null;
  if (existsSync(safetensorsPath)) {
    const bytes = await convertTaesdDecoder(safetensorsPath);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, TAESD_DECODER_FILE), bytes);
    entry = { files: [{ path: TAESD_DECODER_FILE, size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') }] };
    manifest[TAESD_MODEL_ID] = entry;
  }
  await mkdir(outDir, { recursive: true });
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return entry;
}

function isMain(): boolean {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
}

if (isMain()) {
  const entry = await generateTaesd(path.resolve(process.argv[2] ?? 'public/models'));
  console.log(entry ? `taesd              1 files ${(entry.files[0].size / 1024).toFixed(1).padStart(8)} KiB` : 'taesd: no fixture, skipped');
}
