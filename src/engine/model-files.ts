/**
 * A model's files as the sessions need them. Small files (configs, tokenizers) are held in memory;
 * each graph is read from the store when its session is created and dropped after, so a load never
 * holds more than one graph's bytes (its external-data shards included) next to the copy ORT makes.
 * A graph's weights may live in several external-data files (model.onnx_data, model.onnx_data_1, …):
 * the graph names them, each is read into its own buffer, and none may be over 2 GB.
 */
import { readGraphInfo, type GraphInfo } from '../models/onnx-graph.ts';
import type { ModelSource } from '../models/model-source.ts';
import type { ModelStore } from '../models/model-store.ts';

/** Graph files and their external weights: read one graph at a time, right before its session. */
export function isGraphFile(path: string): boolean {
  return /\.onnx(_data(_\d+)?|\.data)?$/.test(path);
}

export interface GraphFile {
  bytes: Uint8Array;
  info: GraphInfo;
  /** The external-data files, by the location the graph names them with (ORT's externalData). */
  externalData?: { path: string; data: Uint8Array }[];
}

export interface ModelFiles {
  has(path: string): boolean;
  /** The graph at `path`, its declared I/O, and every external-data file it names. */
  graph(path: string): Promise<GraphFile>;
  /** Seconds spent reading graphs from the store, and the largest file read. */
  readonly readSeconds: number;
  readonly largestFileBytes: number;
}

/** The folder a graph's external-data locations are relative to ("unet/" for "unet/model.onnx"). */
function folderOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash + 1);
}

export function modelFiles(store: ModelStore, source: ModelSource): ModelFiles {
  const paths = new Set(source.files.map((f) => f.path));
  let readSeconds = 0;
  let largestFileBytes = 0;
  const read = async (path: string) => {
    const file = source.files.find((f) => f.path === path);
    if (!file) throw new Error(`${source.id}: the model has no ${path}`);
    const started = performance.now();
    const bytes = await store.getFile(source, file);
    readSeconds += (performance.now() - started) / 1000;
    largestFileBytes = Math.max(largestFileBytes, bytes.byteLength);
    return bytes;
  };
  return {
    has: (path) => paths.has(path),
    async graph(path) {
      const bytes = await read(path);
      const info = readGraphInfo(bytes);
      if (info.externalData.length === 0) return { bytes, info };
      const externalData: { path: string; data: Uint8Array }[] = [];
      for (const location of info.externalData) {
        const stored = `${folderOf(path)}${location}`;
        if (!paths.has(stored)) {
          throw new Error(`${source.id}: ${path} keeps weights in "${location}", which is not among the model's files (${stored})`);
        }
        externalData.push({ path: location, data: await read(stored) });
      }
      return { bytes, info, externalData };
    },
    get readSeconds() {
      return readSeconds;
    },
    get largestFileBytes() {
      return largestFileBytes;
    },
  };
}
