/** What the store needs to know about a model: where its files live and how to check them. */
export interface ModelFile {
  /** Path inside the model repository, e.g. "unet/model.onnx". */
  path: string;
  /** Expected size in bytes, when known: checked before the file counts as cached. */
  size?: number;
  /** Expected sha256 (hex), when known: checked before the file counts as cached. */
  sha256?: string;
  /** Absolute URL of the file when it does not live at baseUrl + path (another host, another revision). */
  url?: string;
}

export interface ModelSource {
  id: string;
  /** Absolute URL of the repository root, ending in "/"; a file's URL is baseUrl + path. */
  baseUrl: string;
  files: ModelFile[];
}

export interface DownloadProgress {
  modelId: string;
  file: string;
  loaded: number;
  total: number | null;
  /** Whether the bytes came from the IndexedDB cache rather than the network. */
  fromCache: boolean;
  /** Network speed over the last few seconds (0 until bytes arrive). */
  bytesPerSecond?: number;
  /** Seconds left for the whole model at the current speed; null while the size or the speed is unknown. */
  etaSeconds?: number | null;
  /** Bytes of the whole model stored or in flight, this file included. */
  modelLoaded?: number;
  /** Bytes of the whole model; null while a file's size is unknown. */
  modelTotal?: number | null;
  /** True while a downloaded file's stored chunks are being re-read and hashed. */
  verifying?: boolean;
}
