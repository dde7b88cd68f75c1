/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The browser module is built by `make wasm` into target/wasm/pkg (wasm-bindgen --target web).
const wasmPkg = fileURLToPath(new URL('../target/wasm/pkg/spoor_wasm.js', import.meta.url));

export default defineConfig({
  // Relative asset URLs, resolved against index.html's <base href>: the same build works at the
  // root and under a base path (`--query.base-path`).
  base: './',
  plugins: [react()],
  resolve: { alias: { 'spoor-wasm': wasmPkg } },
  server: {
    fs: { allow: ['..'] },
    // `npm run dev` talks to a daemon on the default query port.
    proxy: { '/api': 'http://127.0.0.1:16686' },
  },
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1024 },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
  },
});
