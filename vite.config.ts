import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';
import { BACKGROUND_COLOR, ICONS, THEME_COLOR, manifestIcons, renderIcon } from './tools/icons.ts';

const require = createRequire(import.meta.url);
// The package exports its runtime .wasm files by name; their folder holds the matching .mjs.
const ortDist = dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm'));
// The WebGPU bundle (which also carries the WASM backend) loads this runtime at run time from ort.env.wasm.wasmPaths.
const ortRuntimeFiles = readdirSync(ortDist).filter((f) => /^ort-wasm-simd-threaded\.asyncify\.(mjs|wasm)$/.test(f));

/** Serves onnxruntime-web's runtime files under /ort/ in dev and emits them into the build. */
function ortRuntime(): Plugin {
  return {
    name: 'ort-runtime-files',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const name = req.url?.split('?')[0].replace(/^\/ort\//, '');
        if (!req.url?.startsWith('/ort/') || !name || !ortRuntimeFiles.includes(name)) return next();
        res.setHeader('Content-Type', name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        res.end(readFileSync(join(ortDist, name)));
      });
    },
    generateBundle() {
      for (const name of ortRuntimeFiles) {
        this.emitFile({ type: 'asset', fileName: `ort/${name}`, source: readFileSync(join(ortDist, name)) });
      }
    },
  };
}

/** Serves the code-drawn icons (tools/icons.ts) in dev and emits them into the build, so no PNG is committed. */
function appIcons(): Plugin {
  const rendered = new Map<string, Uint8Array>();
  const icon = (file: string) => rendered.get(file) ?? rendered.set(file, renderIcon(ICONS.find((i) => i.file === file)!)).get(file)!;
  return {
    name: 'app-icons',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const file = req.url?.split('?')[0].replace(/^\//, '');
        if (!file || !ICONS.some((i) => i.file === file)) return next();
        res.setHeader('Content-Type', 'image/png');
        res.end(icon(file));
      });
    },
    generateBundle() {
      for (const { file } of ICONS) this.emitFile({ type: 'asset', fileName: file, source: icon(file) });
    },
  };
}

/**
 * The service worker (Workbox generateSW). It precaches the app shell, ORT's runtime under ort/ (the 27 MB
 * .wasm included) and the models' small JSON/text files, so that the app starts with the network off.
 * Model weights (*.onnx) are left out on purpose: the engine keeps them in IndexedDB, verified by sha256,
 * and a second copy in Cache Storage would double the disk use of multi-GB models.
 * skipWaiting + clientsClaim: a new version takes over as soon as it is installed, so the next load
 * (even a plain reload of the only tab) runs it; src/ui/pwa.ts tells the user instead of reloading
 * under a running generation. pwa.ts registers the worker itself (injectRegister: false).
 */
function serviceWorker(): Plugin[] {
  return VitePWA({
    injectRegister: false,
    registerType: 'autoUpdate',
    manifest: {
      name: 'Stable Diffusion in the browser',
      short_name: 'SD Browser',
      description: 'Stable Diffusion in your browser, speaking the Stable Diffusion API; works offline once a model is cached',
      start_url: '/',
      scope: '/',
      display: 'standalone',
      background_color: BACKGROUND_COLOR,
      theme_color: THEME_COLOR,
      icons: manifestIcons('/'),
    },
    // The icons are emitted by appIcons() and found by globPatterns; this option looks in public/ only.
    includeManifestIcons: false,
    workbox: {
      // manifest.webmanifest is added by the plugin itself.
      // engine/*.onnx: the engine's own helper graphs (a few hundred bytes each), not model weights.
      globPatterns: ['**/*.{html,js,mjs,css,wasm,png,svg,ico}', 'models/models.json', 'models/*/**/*.{json,txt}', 'engine/*.onnx'],
      globIgnores: ['models/**/*.onnx', '**/*.onnx_data', '**/*.onnx.data'],
      // ORT's .wasm is about 27 MB; the default limit (2 MiB) would silently leave it out.
      maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
      skipWaiting: true,
      clientsClaim: true,
      cleanupOutdatedCaches: true,
      // Any navigation (e.g. /?model=tiny-sd&mode=local) gets the precached page when offline.
      navigateFallback: 'index.html',
      navigateFallbackDenylist: [/^\/models\//, /^\/ort\//],
    },
  });
}

const port = Number(process.env.PORT ?? 4173);

export default defineConfig({
  plugins: [ortRuntime(), appIcons(), serviceWorker()],
  // ORT's "extern wasm" build loads its runtime from ort.env.wasm.wasmPaths (/ort/, served above)
  // instead of carrying a second copy of the 27 MB .wasm as a hashed asset.
  resolve: { conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions] },
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 2000 },
  // ORT's own bundle resolves its runtime by URL; pre-bundling would move it away from that URL.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port, strictPort: true },
});
