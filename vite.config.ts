import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

const require = createRequire(import.meta.url);
const ortDist = join(dirname(require.resolve('onnxruntime-web/package.json')), 'dist');
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
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 2000 },
  // ORT's own bundle resolves its runtime by URL; pre-bundling would move it away from that URL.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port, strictPort: true },
});
