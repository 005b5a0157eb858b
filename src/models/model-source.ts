/** What the store needs to know about a model: where its files live and how to check them. */
export interface ModelFile {
  /** Path inside the model repository, e.g. "unet/model.onnx". */
  path: string;
  /** Expected size in bytes, when known: checked before the file counts as cached. */
  size?: number;
  /** Expected sha256 (hex), when known: checked before the file counts as cached. */
  sha256?: string;
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
}
