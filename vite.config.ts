import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';

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

const port = Number(process.env.PORT ?? 4173);

export default defineConfig({
  plugins: [ortRuntime()],
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
