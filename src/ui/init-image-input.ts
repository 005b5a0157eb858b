/**
 * The init image of img2img and inpaint: typed as a URL, picked from a file, dropped, or pasted
 * (Ctrl+V of an image anywhere on the page). The latest of these wins; a preview shows it and its
 * size, which the mask editor needs.
 */

export interface LoadedImage {
  url: string;
  width: number;
  height: number;
}

export interface InitImageOptions {
  /** The preview loaded (or the image was removed: null). */
  onImage(image: LoadedImage | null): void;
  /** An image was pasted or dropped: the form may switch to a mode that takes one. */
  onImageGiven?(): void;
}

export interface InitImageInput {
  /** The URL the request will carry, or null when none is given. */
  value(): string | null;
  set(url: string | null, caption?: string): void;
  /** The loaded image, once the preview has decoded it. */
  loaded(): LoadedImage | null;
}

/** How long typing pauses before the preview fetches the URL. */
const PREVIEW_DELAY_MS = 400;

function imageFileOf(list: FileList | DataTransferItemList | null | undefined): File | null {
  if (!list) return null;
  for (const item of Array.from(list as ArrayLike<File | DataTransferItem>)) {
    const file = item instanceof File ? item : item.kind === 'file' ? item.getAsFile() : null;
    if (file && file.type.startsWith('image/')) return file;
  }
  return null;
}

export function mountInitImageInput(root: HTMLElement, options: InitImageOptions): InitImageInput {
  const $ = <T extends HTMLElement>(id: string) => root.querySelector<T>(`#${id}`)!;
  const urlInput = $<HTMLInputElement>('init_image');
  const fileInput = $<HTMLInputElement>('init_file');
  const preview = $<HTMLImageElement>('init-preview');
  const caption = $<HTMLElement>('init-caption');
  const clearButton = $<HTMLButtonElement>('init-clear');
  const dropZone = root.querySelector<HTMLElement>('.init-drop') ?? root;

  let current: string | null = null;
  let loaded: LoadedImage | null = null;
  let label = '';
  let previewTimer: ReturnType<typeof setTimeout> | undefined;
  /** The URL the preview was last pointed at, so that a change event does not reload it. */
  let shown: string | null = null;

  const showCaption = (text: string, isError = false) => {
    caption.textContent = text;
    caption.classList.toggle('error', isError);
  };

  const showPreview = () => {
    clearTimeout(previewTimer);
    loaded = null;
    shown = current;
    clearButton.hidden = !current;
    if (!current) {
      preview.hidden = true;
      preview.removeAttribute('src');
      showCaption('');
      options.onImage(null);
      return;
    }
    // Until it decodes, its size is unknown: the mask editor waits.
    options.onImage(null);
    showCaption(`${label}Loading the preview…`);
    preview.src = current;
  };

  preview.addEventListener('load', () => {
    if (!current || preview.src !== new URL(current, location.href).href) return;
    loaded = { url: current, width: preview.naturalWidth, height: preview.naturalHeight };
    preview.hidden = false;
    showCaption(`${label}${loaded.width}×${loaded.height}`);
    options.onImage(loaded);
  });
  preview.addEventListener('error', () => {
    if (!current) return;
    preview.hidden = true;
    showCaption('The image could not be loaded here: check the URL, and that its server allows cross-origin use (CORS).', true);
    options.onImage(null);
  });

  // A blob: URL is not revoked when replaced: a queued request may still need it.
  const setFile = (file: File) => {
    label = `${file.name} · `;
    urlInput.value = '';
    current = URL.createObjectURL(file);
    showPreview();
  };

  const set = (url: string | null, text?: string) => {
    const value = url?.trim() || null;
    // data: and blob: URLs are long or meaningless to read: they stay out of the text field.
    const typeable = value !== null && !/^(data|blob):/i.test(value);
    urlInput.value = typeable ? value : '';
    label = text ? `${text} · ` : '';
    current = value;
    fileInput.value = '';
    showPreview();
  };

  urlInput.addEventListener('input', () => {
    current = urlInput.value.trim() || null;
    label = '';
    fileInput.value = '';
    clearTimeout(previewTimer);
    previewTimer = setTimeout(showPreview, PREVIEW_DELAY_MS);
  });
  urlInput.addEventListener('change', () => {
    if (current !== shown) showPreview();
  });

  fileInput.addEventListener('change', () => {
    const file = imageFileOf(fileInput.files);
    if (file) setFile(file);
  });

  clearButton.addEventListener('click', () => {
    set(null);
    urlInput.focus();
  });

  dropZone.addEventListener('dragover', (e) => {
    e.preventDefault();
    dropZone.classList.add('dragging');
  });
  dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
  dropZone.addEventListener('drop', (e) => {
    e.preventDefault();
    dropZone.classList.remove('dragging');
    const file = imageFileOf(e.dataTransfer?.files);
    if (file) {
      setFile(file);
      options.onImageGiven?.();
      return;
    }
    // An image dragged from a page (a result, a gallery item) arrives as its URL.
    const uri = (e.dataTransfer?.getData('text/uri-list') || e.dataTransfer?.getData('text/plain') || '').split('\n')[0].trim();
    if (/^(https?:|blob:|data:image\/)/i.test(uri)) {
      set(uri, 'Dropped image');
      options.onImageGiven?.();
    }
  });

  // Ctrl+V of an image anywhere on the page; text pastes go on to whatever field is focused.
  document.addEventListener('paste', (e) => {
    const file = imageFileOf(e.clipboardData?.items) ?? imageFileOf(e.clipboardData?.files);
    if (!file) return;
    e.preventDefault();
    label = 'Pasted image · ';
    urlInput.value = '';
    fileInput.value = '';
    current = URL.createObjectURL(file);
    showPreview();
    options.onImageGiven?.();
  });

  return {
    value: () => current,
    set,
    loaded: () => loaded,
  };
}
